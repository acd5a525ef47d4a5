package awssm_test

import (
	"fmt"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/store/awssm"
)

// The IAM policy for applications: read values, never rotor's records.
func ExamplePolicy() {
	p, err := awssm.Policy(authz.RoleApp, awssm.PolicyOptions{Region: "eu-west-1", Account: "111122223333"})
	if err != nil {
		panic(err)
	}
	fmt.Print(p)
	// Output:
	// {
	//   "Version": "2012-10-17",
	//   "Statement": [
	//     {
	//       "Sid": "ReadSecretValues",
	//       "Effect": "Allow",
	//       "Action": [
	//         "secretsmanager:GetSecretValue",
	//         "secretsmanager:DescribeSecret"
	//       ],
	//       "Resource": [
	//         "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rotor/*"
	//       ]
	//     },
	//     {
	//       "Sid": "DenyRotorState",
	//       "Effect": "Deny",
	//       "Action": [
	//         "secretsmanager:GetSecretValue"
	//       ],
	//       "Resource": [
	//         "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rotor/*/rotor-state-??????"
	//       ]
	//     }
	//   ]
	// }
}

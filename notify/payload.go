package notify

import (
	"encoding/json"
	"strings"
	"time"
)

// CloudEvents 1.0 structured mode: the event is the body, as a JSON object
// whose members are its attributes (JSON Event Format for CloudEvents,
// https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md).
const (
	// ContentTypeCloudEvents is the media type of a structured CloudEvent
	// in JSON (json-format.md, section 3).
	ContentTypeCloudEvents = "application/cloudevents+json; charset=utf-8"
	// TypePrefix prefixes the kind in a CloudEvent's type attribute:
	// dev.rotor.rotated, dev.rotor.rotation_failed, …
	TypePrefix = "dev.rotor."
)

// CloudEvent is the JSON body of a webhook delivery. The attributes
// specversion, id, source and type are required by the CloudEvents spec;
// rotor also sets subject (the secret), time and datacontenttype.
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Data      `json:"data"`
}

// Data is the data of a [CloudEvent]: what happened, in snake_case.
type Data struct {
	Kind      Kind     `json:"kind"`
	Secret    string   `json:"secret,omitempty"`
	KeyID     string   `json:"key_id,omitempty"`
	Operation string   `json:"operation,omitempty"`
	Initiator string   `json:"initiator,omitempty"`
	Summary   string   `json:"summary"`
	Steps     []string `json:"steps,omitempty"`
}

func cloudEvent(id, source string, e Event) ([]byte, error) {
	return json.Marshal(CloudEvent{
		SpecVersion: "1.0", ID: id, Source: source, Type: TypePrefix + string(e.Kind),
		Subject: e.Secret, Time: e.Time.UTC(), DataContentType: "application/json",
		Data: Data{Kind: e.Kind, Secret: e.Secret, KeyID: e.KeyID, Operation: e.Operation,
			Initiator: e.Initiator, Summary: e.Summary, Steps: e.Steps},
	})
}

// SlackMessage is the JSON body of a Slack delivery: an incoming webhook
// message (https://api.slack.com/messaging/webhooks) with text, which is
// also the notification's fallback, and a section block per paragraph.
type SlackMessage struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one Block Kit section of a [SlackMessage].
type SlackBlock struct {
	Type string    `json:"type"`
	Text SlackText `json:"text"`
}

// SlackText is a Block Kit text object.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackEscape escapes what Slack's mrkdwn treats as control characters
// (https://api.slack.com/reference/surfaces/formatting#escaping).
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackMessage(e Event) ([]byte, error) {
	text := slackEscape.Replace(e.Summary)
	head := "*rotor: " + string(e.Kind) + "*"
	if e.Secret != "" {
		head += " `" + slackEscape.Replace(e.Secret) + "`"
	}
	blocks := []SlackBlock{section(head + "\n" + text)}
	if len(e.Steps) > 0 {
		var b strings.Builder
		for i, s := range e.Steps {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString("• " + slackEscape.Replace(s))
		}
		blocks = append(blocks, section(b.String()))
	}
	var ctx []string
	if e.KeyID != "" {
		ctx = append(ctx, "key "+e.KeyID)
	}
	if e.Operation != "" {
		ctx = append(ctx, "operation "+e.Operation)
	}
	if e.Initiator != "" {
		ctx = append(ctx, "by "+slackEscape.Replace(e.Initiator))
	}
	if len(ctx) > 0 {
		blocks = append(blocks, section(strings.Join(ctx, " · ")))
	}
	return json.Marshal(SlackMessage{Text: "rotor: " + text, Blocks: blocks})
}

func section(text string) SlackBlock {
	return SlackBlock{Type: "section", Text: SlackText{Type: "mrkdwn", Text: text}}
}

package sdk

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Backup  string            `json:"backup" required:"true" desc:"backup folder"`
	Target  string            `json:"target" required:"true"`
	Retries int               `json:"retries"`
	Wait    time.Duration     `json:"wait"`
	Tags    []string          `json:"tags"`
	Env     map[string]string `json:"env"`
	hidden  string            //nolint:unused // unexported fields are ignored
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    testConfig
		wantErr []string
	}{
		{name: "full", json: `{"backup":"/b","target":"/t","retries":2,"wait":"90s","tags":["a"],"env":{"K":"V"}}`,
			want: testConfig{Backup: "/b", Target: "/t", Retries: 2, Wait: 90 * time.Second, Tags: []string{"a"}, Env: map[string]string{"K": "V"}}},
		{name: "unknown and missing", json: `{"bakup":"/b"}`,
			wantErr: []string{`with.bakup: unknown field (want backup, target, retries, wait, tags, env)`, "with.backup: required field missing", "with.target: required field missing"}},
		{name: "wrong type", json: `{"backup":"/b","target":"/t","retries":"two"}`,
			wantErr: []string{`with.retries: want int, got string`}},
		{name: "bad duration", json: `{"backup":"/b","target":"/t","wait":"soon"}`,
			wantErr: []string{`with.wait: want a duration such as "90s" or "5m", got "soon"`}},
		{name: "null counts as missing", json: `{"backup":null,"target":"/t"}`,
			wantErr: []string{"with.backup: required field missing"}},
		{name: "not a mapping", json: `[1]`, wantErr: []string{"with: not a mapping"}},
		{name: "empty config", json: ``, wantErr: []string{"with.backup: required field missing", "with.target: required field missing"}},
		{name: "empty object", json: `{}`, wantErr: []string{"with.backup: required field missing", "with.target: required field missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testConfig
			err := (&Request{ConfigJSON: []byte(tt.json)}).Decode(&got)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode = nil, want errors %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nlacks %q", err, w)
				}
			}
		})
	}
	if err := (&Request{}).Decode(testConfig{}); err == nil {
		t.Error("Decode of a non-pointer: want an error")
	}
}

func TestFieldsOf(t *testing.T) {
	got := FieldsOf(&testConfig{})
	want := []Field{
		{Name: "backup", Type: "string", Required: true, Description: "backup folder"},
		{Name: "target", Type: "string", Required: true},
		{Name: "retries", Type: "int"},
		{Name: "wait", Type: "duration"},
		{Name: "tags", Type: "[]string"},
		{Name: "env", Type: "map[string]string"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FieldsOf = %+v\nwant %+v", got, want)
	}
	if FieldsOf(3) != nil {
		t.Error("FieldsOf(int): want nil")
	}
}

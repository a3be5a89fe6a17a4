package sdk

import (
	"encoding/json"
	"testing"
)

// FuzzDecode checks that no config makes Decode or validateFields panic,
// and that a config Decode accepts is an object holding every required key.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"backup":"/b","target":"/t","retries":2,"wait":"90s","tags":["a"],"env":{"K":"V"}}`,
		`{"bakup":1}`, `[]`, `null`, `{"wait":"-5s","backup":"x","target":"y"}`, `{"retries":1e400}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c testConfig
		err := (&Request{ConfigJSON: data}).Decode(&c)
		var m map[string]any
		if jerr := json.Unmarshal(data, &m); jerr == nil {
			validateFields(FieldsOf(testConfig{}), m)
		}
		if err != nil {
			return
		}
		if len(data) == 0 {
			t.Fatal("empty config accepted without its required keys")
		}
		if m["backup"] == nil || m["target"] == nil {
			t.Fatalf("config %q accepted without a required key", data)
		}
	})
}

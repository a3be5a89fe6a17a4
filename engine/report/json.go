package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// JSON writes the report as one indented JSON document, the schema of
// SCHEMA.md ("schema": "reprise.report/v1").
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("render json: %w", err)
	}
	return nil
}

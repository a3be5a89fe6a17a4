package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

var client = &http.Client{Timeout: 10 * time.Second}

func do(ctx context.Context, method, url string, body io.Reader, contentType string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return b, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	b, err := do(ctx, http.MethodGet, url, nil, "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

func putJSON(ctx context.Context, url string, v any) error {
	b, _ := json.Marshal(v)
	_, err := do(ctx, http.MethodPut, url, bytes.NewReader(b), "application/json")
	return err
}

func postJSON(ctx context.Context, url string, in, out any) error {
	b, _ := json.Marshal(in)
	resp, err := do(ctx, http.MethodPost, url, bytes.NewReader(b), "application/json")
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			return fmt.Errorf("POST %s: %w", url, err)
		}
	}
	return nil
}

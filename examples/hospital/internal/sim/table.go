package sim

import (
	"encoding/csv"
	"fmt"
	"os"
	"sort"
)

// Row is one record, by column name.
type Row map[string]string

// Table is a keyed set of rows: the key is the first column of the CSV the
// table was loaded from. Not safe for concurrent use: Service locks.
type Table struct {
	Name    string
	Columns []string
	Rows    map[string]Row
}

// ReadCSV loads a CSV file with a header line into a Table keyed by its
// first column. Duplicate keys and ragged lines are errors naming the line.
func ReadCSV(name, path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("read %s: no header line", path)
	}
	t := &Table{Name: name, Columns: recs[0], Rows: map[string]Row{}}
	for i, rec := range recs[1:] {
		row := Row{}
		for j, c := range t.Columns {
			row[c] = rec[j]
		}
		key := rec[0]
		if key == "" {
			return nil, fmt.Errorf("%s:%d: empty key in column %q", path, i+2, t.Columns[0])
		}
		if _, dup := t.Rows[key]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate key %q", path, i+2, key)
		}
		t.Rows[key] = row
	}
	return t, nil
}

// Keys returns the table's keys, sorted.
func (t *Table) Keys() []string {
	keys := make([]string, 0, len(t.Rows))
	for k := range t.Rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Sorted returns the rows in key order.
func (t *Table) Sorted() []Row {
	out := make([]Row, 0, len(t.Rows))
	for _, k := range t.Keys() {
		out = append(out, t.Rows[k])
	}
	return out
}

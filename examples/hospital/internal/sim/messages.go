package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/reprise-si/reprise/examples/hospital/internal/hl7"
)

// Route sends messages of one type, addressed to one receiving application,
// to a target app (the EAI's routes.csv).
type Route struct {
	MsgType  string // "ADT", "ORM", …
	Receiver string // MSH-5, e.g. "LIS"
	Target   string // app id
}

func (s *Service) routes() ([]Route, error) {
	t := s.tables["routes"]
	if t == nil || len(t.Rows) == 0 {
		return nil, fmt.Errorf("eai: no routes restored (routes.csv)")
	}
	var out []Route
	for _, r := range t.Sorted() {
		if _, err := FindApp(r["target"]); err != nil {
			return nil, fmt.Errorf("eai route %s: %w", r["route_id"], err)
		}
		out = append(out, Route{MsgType: r["msg_type"], Receiver: r["receiver"], Target: r["target"]})
	}
	return out, nil
}

func serveMLLP(ctx context.Context, s *Service, ln net.Listener) error {
	return hl7.Serve(ctx, ln, func(ctx context.Context, msg *hl7.Message) *hl7.Message {
		return s.receive(ctx, msg)
	})
}

// receive handles one HL7 message: the EAI routes it (or keeps it when it is
// addressed to the EAI itself); any other app files it in its tables.
func (s *Service) receive(ctx context.Context, msg *hl7.Message) *hl7.Message {
	me := strings.ToUpper(s.app.ID)
	s.mu.RLock()
	loadErr := s.loadErr
	s.mu.RUnlock()
	if loadErr != nil {
		return hl7.Ack(msg, me, hl7.AckError, "application not ready: data not verified")
	}
	if s.app.ID == "eai" && msg.Field("MSH", 5) != "EAI" {
		return s.route(ctx, msg)
	}
	if err := s.file(msg); err != nil {
		return hl7.Ack(msg, me, hl7.AckError, err.Error())
	}
	return hl7.Ack(msg, me, hl7.AckAccept, "filed by "+s.app.ID)
}

func (s *Service) route(ctx context.Context, msg *hl7.Message) *hl7.Message {
	s.mu.RLock()
	routes, err := s.routes()
	s.mu.RUnlock()
	if err != nil {
		return hl7.Ack(msg, "EAI", hl7.AckError, err.Error())
	}
	kind := hl7.Component(msg.Field("MSH", 9), 1)
	recv := msg.Field("MSH", 5)
	for _, r := range routes {
		if r.MsgType != kind || r.Receiver != recv {
			continue
		}
		app, _ := FindApp(r.Target)
		reply, err := hl7.Send(ctx, s.env.MLLPAddr(app), msg, 5*time.Second)
		code, text := hl7.AckError, ""
		if err != nil {
			text = fmt.Sprintf("route to %s: %v", r.Target, err)
		} else {
			code, text = reply.AckCode(), fmt.Sprintf("routed to %s: %s", r.Target, reply.AckText())
		}
		_ = s.Put("messages", msg.ControlID(), Row{"control": msg.ControlID(), "type": msg.Type(), "from": msg.Field("MSH", 3), "to": r.Target, "ack": code})
		return hl7.Ack(msg, "EAI", code, text)
	}
	return hl7.Ack(msg, "EAI", hl7.AckReject, fmt.Sprintf("no route for %s to %q", kind, recv))
}

// file stores a received message: the patient, the inbox entry, and what the
// message type carries (admission, discharge, order, result, prescription).
func (s *Service) file(msg *hl7.Message) error {
	ins := hl7.Component(msg.Field("PID", 3), 1)
	if err := CheckINS(ins); err != nil {
		return fmt.Errorf("PID-3: %w", err)
	}
	name := msg.Field("PID", 5)
	patient := Row{"ins": ins, "family": hl7.Component(name, 1), "given": hl7.Component(name, 2), "birth_date": msg.Field("PID", 7), "sex": msg.Field("PID", 8)}
	ctrl := msg.ControlID()
	if ctrl == "" {
		return fmt.Errorf("MSH-10: empty message control id")
	}
	var table, key string
	var row Row
	switch msg.Type() {
	case "ADT^A01":
		table, key, row = "admissions", ctrl, Row{"control": ctrl, "ins": ins, "unit": msg.Field("PV1", 3)}
	case "ADT^A03":
		table, key, row = "discharges", msg.Field("PV1", 19), Row{"stay_id": msg.Field("PV1", 19), "ins": ins, "unit": msg.Field("PV1", 3)}
	case "ORM^O01":
		table, key, row = "orders", msg.Field("ORC", 2), Row{"order_id": msg.Field("ORC", 2), "ins": ins, "item": msg.Field("OBR", 4)}
	case "ORU^R01":
		table, key, row = "results", msg.Field("OBR", 3), Row{"result_id": msg.Field("OBR", 3), "ins": ins, "test": hl7.Component(msg.Field("OBX", 3), 1), "value": msg.Field("OBX", 5), "unit": msg.Field("OBX", 6)}
	case "RDE^O11":
		code := hl7.Component(msg.Field("RXE", 2), 1)
		if s.app.ID == "pharmacy" {
			if _, ok := s.Get("stock", code); !ok {
				return fmt.Errorf("RXE-2: drug %q not in the pharmacy's stock", code)
			}
		}
		table, key, row = "orders", msg.Field("ORC", 2), Row{"order_id": msg.Field("ORC", 2), "ins": ins, "code": code, "quantity": msg.Field("RXE", 10)}
	default:
		return fmt.Errorf("MSH-9: message type %s not handled by %s", msg.Type(), s.app.ID)
	}
	if key == "" {
		return fmt.Errorf("%s: empty key for %s", msg.Type(), table)
	}
	if err := s.Put("patients", ins, patient); err != nil {
		return err
	}
	if err := s.Put(table, key, row); err != nil {
		return err
	}
	return s.Put("inbox", ctrl, Row{"control": ctrl, "type": msg.Type(), "from": msg.Field("MSH", 3), "ins": ins, "key": key})
}

// SendRequest asks an app to send a test message through the EAI.
type SendRequest struct {
	Type    string `json:"type"`    // ADT^A01, ADT^A03, ORM^O01, ORU^R01, RDE^O11
	To      string `json:"to"`      // receiving app id
	Control string `json:"control"` // MSH-10
}

// SendResult is what the sending app reports back.
type SendResult struct {
	Code  string `json:"code"` // MSA-1 of the ACK
	Text  string `json:"text"`
	Ack   string `json:"ack"`   // the raw ACK
	INS   string `json:"ins"`   // the patient the message was about
	Table string `json:"table"` // where the receiver files it
	Key   string `json:"key"`   // and under which key
}

func (s *Service) handleSend(w http.ResponseWriter, r *http.Request) {
	if !s.ready(w) {
		return
	}
	var req SendRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	msg, res, err := s.build(r.Context(), req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	eai, _ := FindApp("eai")
	ack, err := hl7.Send(r.Context(), s.env.MLLPAddr(eai), msg, 8*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	res.Code, res.Text, res.Ack = ack.AckCode(), ack.AckText(), strings.ReplaceAll(string(ack.Bytes()), "\r", "\n")
	writeJSON(w, http.StatusOK, res)
}

// pick chooses a row of table deterministically from the control id, so that
// successive tests use different records.
func (s *Service) pick(table, control string, keep func(Row) bool) (Row, error) {
	var rows []Row
	for _, r := range s.Rows(table) {
		if keep == nil || keep(r) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no usable row in table %q", s.app.ID, table)
	}
	h := sha256.Sum256([]byte(control))
	return rows[binary.BigEndian.Uint64(h[:8])%uint64(len(rows))], nil
}

// build makes the test message req asks for, from this app's own data and
// the patient's identity as known by the admissions (GAM).
func (s *Service) build(ctx context.Context, req SendRequest) (*hl7.Message, SendResult, error) {
	var res SendResult
	if req.Control == "" || len(req.Control) > 20 {
		return nil, res, fmt.Errorf("control id %q: want 1 to 20 characters", req.Control)
	}
	receiver := strings.ToUpper(req.To)
	me := strings.ToUpper(s.app.ID)
	var source, insCol string
	switch {
	case s.app.ID == "gam":
		source, insCol = "patients", "ins"
		if req.Type == "ADT^A03" {
			source = "stays"
		}
	case s.app.ID == "dpi":
		source, insCol = "records", "ins"
	case s.app.ID == "lis" && req.Type == "ORU^R01":
		source, insCol = "results", "ins"
	case s.app.ID == "lis":
		source, insCol = "tests", ""
	default:
		return nil, res, fmt.Errorf("%s does not send %s", s.app.ID, req.Type)
	}
	keep := func(r Row) bool { return req.Type != "ORU^R01" || r["validated"] == "yes" }
	row, err := s.pick(source, req.Control, keep)
	if err != nil {
		return nil, res, err
	}
	ins := row[insCol]
	if insCol == "" { // a lab order for a patient of the lab's own results
		r, err := s.pick("results", req.Control, nil)
		if err != nil {
			return nil, res, err
		}
		ins = r["ins"]
	}
	p, err := lookupPatient(ctx, s.env, ins)
	if err != nil {
		return nil, res, err
	}
	msg := hl7.NewMessage(me, receiver, req.Type, req.Control, time.Now())
	msg.Add("PID", "1", "", ins+"^^^INS-NIR&1.2.250.1.213.1.4.8&ISO^INS", "", p["family"]+"^"+p["given"], "", strings.ReplaceAll(p["birth_date"], "-", ""), p["sex"])
	res.INS = ins
	switch req.Type {
	case "ADT^A01":
		msg.Add("PV1", "1", "I", "MED")
		res.Table, res.Key = "admissions", req.Control
	case "ADT^A03":
		pv1 := make([]string, 20)
		pv1[0], pv1[1], pv1[2], pv1[3], pv1[19] = "PV1", "1", "I", row["unit"], row["stay_id"]
		msg.Add(pv1...)
		res.Table, res.Key = "discharges", row["stay_id"]
	case "ORM^O01":
		item := "GLU^Glucose"
		switch req.To {
		case "ris":
			item = "CT-THX^CT thorax"
		case "blood-bank":
			item = "RBC^Red cell concentrate"
		}
		order := "ORD-" + req.Control
		msg.Add("ORC", "NW", order)
		msg.Add("OBR", "1", order, "", item)
		res.Table, res.Key = "orders", order
	case "ORU^R01":
		msg.Add("OBR", "1", "", row["result_id"], row["test"]+"^"+row["label"])
		msg.Add("OBX", "1", "NM", row["test"]+"^"+row["label"], "", row["value"], row["unit"], row["ref_range"], "", "", "", "F")
		res.Table, res.Key = "results", row["result_id"]
	case "RDE^O11":
		order := "RX-" + req.Control
		msg.Add("ORC", "NW", order)
		msg.Add("RXE", "1", "PARA1G^paracetamol 1 g", "1", "", "g", "", "", "", "", "4")
		res.Table, res.Key = "orders", order
	default:
		return nil, res, fmt.Errorf("message type %q not supported (want ADT^A01, ADT^A03, ORM^O01, ORU^R01, RDE^O11)", req.Type)
	}
	return msg, res, nil
}

// lookupPatient asks the admissions (GAM), the source of patient identity.
func lookupPatient(ctx context.Context, env Env, ins string) (Row, error) {
	gam, _ := FindApp("gam")
	var p Row
	if err := getJSON(ctx, env.URL(gam)+"/tables/patients/"+ins, &p); err != nil {
		return nil, fmt.Errorf("patient %s unknown to the admissions: %w", ins, err)
	}
	return p, nil
}

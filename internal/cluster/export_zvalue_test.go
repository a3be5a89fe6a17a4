package cluster

// IsPacked tells whether an offer or result batch value is stored packed.
func IsPacked(v []byte) bool { return isPacked(v) }

// PackValue is the value an offer or result batch of JSON js is stored as.
func PackValue(js []byte) []byte { return packValue(js) }

// DecodeOffer reads an offer batch's value, packed or plain.
func DecodeOffer(v []byte) (OfferBatch, error) { return decodeOffer(v) }

// DecodeResults reads a result batch's value, packed or plain.
func DecodeResults(v []byte) ([]Result, error) { return decodeResults(v) }

package pgwal

// Tuple value kinds (TupleData).
const (
	tupleNull      = 'n'
	tupleUnchanged = 'u' // an unchanged TOASTed value: not sent, not NULL
	tupleText      = 't'
	tupleBinary    = 'b'
)

// tupleValue is one column of a TupleData. data aliases the message.
type tupleValue struct {
	kind byte
	data []byte
}

// readTuple reads a TupleData into scratch[:0] and returns it. Every column
// takes at least one byte, so a bogus column count cannot make it allocate
// more than the payload's size.
func readTuple(r *wireReader, scratch []tupleValue) []tupleValue {
	n := int(r.uint16("tuple column count"))
	t := scratch[:0]
	for i := 0; i < n && r.err == nil; i++ {
		v := tupleValue{kind: r.uint8("tuple value kind")}
		switch v.kind {
		case tupleNull, tupleUnchanged:
		case tupleText, tupleBinary:
			size := int32(r.uint32("tuple value length"))
			v.data = r.take(int(size), "tuple value")
		default:
			if r.err == nil {
				r.fail("tuple value kind")
			}
		}
		t = append(t, v)
	}
	return t
}

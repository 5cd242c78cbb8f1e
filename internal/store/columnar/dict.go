package columnar

// dict maps values to dense ids. Id 0 is reserved for "absent", so a zero
// column entry means the row has no value. Not safe for concurrent writes;
// readers may read ids below a length they observed under the part's lock.
type dict struct {
	ids  map[string]uint32
	vals []string
}

func newDict() *dict {
	return &dict{ids: make(map[string]uint32), vals: []string{""}}
}

// id returns the id of v, adding it when new.
func (d *dict) id(v string) uint32 {
	if id, ok := d.ids[v]; ok {
		return id
	}
	id := uint32(len(d.vals))
	d.ids[v] = id
	d.vals = append(d.vals, v)
	return id
}

// idBytes is id for a byte slice, without allocating when v is known.
func (d *dict) idBytes(v []byte) uint32 {
	if id, ok := d.ids[string(v)]; ok {
		return id
	}
	return d.id(string(v))
}

// lookup returns the id of v without adding it.
func (d *dict) lookup(v string) (uint32, bool) {
	id, ok := d.ids[v]
	return id, ok
}

func (d *dict) len() int { return len(d.vals) }

// dictFrom rebuilds a dictionary from its values (vals[0] must be "").
func dictFrom(vals []string) *dict {
	d := &dict{ids: make(map[string]uint32, len(vals)), vals: vals}
	for i, v := range vals {
		if i > 0 {
			d.ids[v] = uint32(i)
		}
	}
	return d
}

package columnar

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Attribute values are stored as typed byte strings: one tag byte, then the
// payload. Dictionaries key on these strings, so "1" (string) and 1 (int)
// stay distinct and every OTLP value type round-trips exactly.
const (
	tagEmpty  = 'e'
	tagString = 's'
	tagInt    = 'i'
	tagDouble = 'd'
	tagBool   = 'b'
	tagBytes  = 'y'
	tagArray  = 'a'
	tagMap    = 'm'
)

var errCorrupt = errors.New("columnar: corrupt value encoding")

// appendValue appends the typed encoding of v to dst.
func appendValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		dst = append(dst, tagString)
		return append(dst, v.Str()...)
	case pcommon.ValueTypeInt:
		dst = append(dst, tagInt)
		return binary.LittleEndian.AppendUint64(dst, uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		dst = append(dst, tagDouble)
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(dst, tagBool, 1)
		}
		return append(dst, tagBool, 0)
	case pcommon.ValueTypeBytes:
		dst = append(dst, tagBytes)
		return append(dst, v.Bytes().AsRaw()...)
	case pcommon.ValueTypeSlice:
		dst = append(dst, tagArray)
		s := v.Slice()
		dst = binary.AppendUvarint(dst, uint64(s.Len()))
		for i := 0; i < s.Len(); i++ {
			dst = appendNested(dst, s.At(i))
		}
		return dst
	case pcommon.ValueTypeMap:
		dst = append(dst, tagMap)
		return appendMapBody(dst, v.Map())
	}
	return append(dst, tagEmpty)
}

// appendNested writes a length-prefixed value, for values inside arrays and maps.
func appendNested(dst []byte, v pcommon.Value) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendValue(dst, v)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// appendMapBody writes a map as count, then key/value pairs in order.
func appendMapBody(dst []byte, m pcommon.Map) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.Len()))
	m.Range(func(k string, v pcommon.Value) bool {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = appendNested(dst, v)
		return true
	})
	return dst
}

// decodeValue decodes an encoded value into dst.
func decodeValue(enc string, dst pcommon.Value) error {
	if enc == "" {
		return errCorrupt
	}
	p := enc[1:]
	switch enc[0] {
	case tagEmpty:
	case tagString:
		dst.SetStr(p)
	case tagInt:
		if len(p) != 8 {
			return errCorrupt
		}
		dst.SetInt(int64(binary.LittleEndian.Uint64([]byte(p))))
	case tagDouble:
		if len(p) != 8 {
			return errCorrupt
		}
		dst.SetDouble(math.Float64frombits(binary.LittleEndian.Uint64([]byte(p))))
	case tagBool:
		if len(p) != 1 {
			return errCorrupt
		}
		dst.SetBool(p[0] == 1)
	case tagBytes:
		dst.SetEmptyBytes().FromRaw([]byte(p))
	case tagArray:
		n, k := binary.Uvarint([]byte(p))
		if k <= 0 || n > uint64(len(p)) {
			return errCorrupt
		}
		p = p[k:]
		s := dst.SetEmptySlice()
		s.EnsureCapacity(int(n))
		for i := uint64(0); i < n; i++ {
			var item string
			var err error
			item, p, err = readNested(p)
			if err != nil {
				return err
			}
			if err := decodeValue(item, s.AppendEmpty()); err != nil {
				return err
			}
		}
	case tagMap:
		_, err := decodeMapBody(p, dst.SetEmptyMap())
		return err
	default:
		return errCorrupt
	}
	return nil
}

func readNested(p string) (item, rest string, err error) {
	if len(p) < 4 {
		return "", "", errCorrupt
	}
	n := binary.LittleEndian.Uint32([]byte(p[:4]))
	if uint64(n) > uint64(len(p)-4) {
		return "", "", errCorrupt
	}
	return p[4 : 4+n], p[4+n:], nil
}

// decodeMapBody decodes a map written by appendMapBody and returns the rest.
func decodeMapBody(p string, m pcommon.Map) (string, error) {
	n, k := binary.Uvarint([]byte(p))
	if k <= 0 || n > uint64(len(p)) {
		return "", errCorrupt
	}
	p = p[k:]
	m.EnsureCapacity(int(n))
	for i := uint64(0); i < n; i++ {
		kl, k := binary.Uvarint([]byte(p))
		if k <= 0 || kl > uint64(len(p)-k) {
			return "", errCorrupt
		}
		key := p[k : k+int(kl)]
		p = p[k+int(kl):]
		var item string
		var err error
		item, p, err = readNested(p)
		if err != nil {
			return "", err
		}
		if err := decodeValue(item, m.PutEmpty(key)); err != nil {
			return "", err
		}
	}
	return p, nil
}

// valueString is the string form of an encoded value, used by filters,
// grouping and search results: strings as they are, numbers in Go's
// shortest form, arrays and maps as JSON (pcommon's AsString).
func valueString(enc string) string {
	if enc == "" {
		return ""
	}
	switch enc[0] {
	case tagString:
		return enc[1:]
	case tagInt:
		if len(enc) == 9 {
			return strconv.FormatInt(int64(binary.LittleEndian.Uint64([]byte(enc[1:]))), 10)
		}
	case tagDouble:
		if len(enc) == 9 {
			return strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64([]byte(enc[1:]))), 'g', -1, 64)
		}
	case tagBool:
		if len(enc) == 2 && enc[1] == 1 {
			return "true"
		}
		return "false"
	case tagBytes:
		return base64.StdEncoding.EncodeToString([]byte(enc[1:]))
	case tagEmpty:
		return ""
	}
	v := pcommon.NewValueEmpty()
	if decodeValue(enc, v) != nil {
		return ""
	}
	return v.AsString()
}

// valueNumber returns the numeric value of an encoded int or double.
func valueNumber(enc string) (float64, bool) {
	if len(enc) != 9 {
		return 0, false
	}
	switch enc[0] {
	case tagInt:
		return float64(int64(binary.LittleEndian.Uint64([]byte(enc[1:])))), true
	case tagDouble:
		return math.Float64frombits(binary.LittleEndian.Uint64([]byte(enc[1:]))), true
	}
	return 0, false
}

// encodeString is the encoding of a string value, for dictionary lookups.
func encodeString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 1)
	b.WriteByte(tagString)
	b.WriteString(s)
	return b.String()
}

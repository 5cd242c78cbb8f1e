package otlp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// zstdMaxWindow bounds the memory one zstd frame may ask the decoder for.
// Encoders use at most 8 MiB below level 20 without --long; a hostile
// frame declaring a 2 GiB window is refused instead of allocated.
const zstdMaxWindow = 32 << 20

type bodyEncoding int

const (
	encProto bodyEncoding = iota
	encJSON
)

func (e bodyEncoding) contentType() string {
	if e == encJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

func (e bodyEncoding) name() string {
	if e == encJSON {
		return "JSON"
	}
	return "protobuf"
}

// parseContentType accepts the two OTLP/HTTP media types, ignoring
// parameters such as charset. It does not allocate for the usual headers.
func parseContentType(ct string) (bodyEncoding, bool) {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	switch {
	case strings.EqualFold(ct, "application/x-protobuf"):
		return encProto, true
	case strings.EqualFold(ct, "application/json"):
		return encJSON, true
	}
	return encProto, false
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	b.Reset()
	bufPool.Put(b)
}

var gzipPool sync.Pool // *gzip.Reader

// zstdPool holds single-threaded stream decoders: with concurrency 1 the
// decoder starts no goroutines, so pooled or dropped decoders leak nothing.
var zstdPool = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderLowmem(true),
	)
	if err != nil {
		panic("BUG: zstd.NewReader with static options: " + err.Error())
	}
	return d
}}

// decompressor wraps src in a reader for the given Content-Encoding; put
// returns pooled state after the body was read.
func decompressor(contentEncoding string, src io.Reader) (r io.Reader, put func(), err error) {
	switch contentEncoding {
	case "", "identity":
		return src, func() {}, nil
	case "gzip":
		var gz *gzip.Reader
		if v := gzipPool.Get(); v != nil {
			gz = v.(*gzip.Reader)
			err = gz.Reset(src)
		} else {
			gz, err = gzip.NewReader(src)
		}
		if err != nil {
			if gz != nil {
				gzipPool.Put(gz)
			}
			return nil, nil, err
		}
		return gz, func() { gzipPool.Put(gz) }, nil
	case "zstd":
		d := zstdPool.Get().(*zstd.Decoder)
		if err := d.Reset(src); err != nil {
			return nil, nil, err
		}
		return d, func() {
			_ = d.Reset(nil) // drop the reference to the request body
			zstdPool.Put(d)
		}, nil
	}
	return nil, nil, errUnsupportedEncoding
}

var errUnsupportedEncoding = errors.New("unsupported encoding")

// readBody reads the request body into a pooled buffer, bounded by max
// before and after decompression. Content-Length is used only to refuse
// early and to size the buffer; the limit is enforced on the bytes read.
// The caller must putBuf the returned buffer.
func readBody(w http.ResponseWriter, req *http.Request, contentEncoding string, max int64) (*bytes.Buffer, *exportError) {
	if req.ContentLength > max {
		return nil, tooLarge(fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", req.ContentLength, max))
	}
	raw := http.MaxBytesReader(w, req.Body, max)
	src, put, err := decompressor(contentEncoding, raw)
	if err != nil {
		if errors.Is(err, errUnsupportedEncoding) {
			return nil, unsupportedMedia(fmt.Sprintf("unsupported Content-Encoding %q (supported: gzip, zstd, identity)", contentEncoding))
		}
		return nil, bodyReadError(contentEncoding, err, max)
	}
	defer put()
	buf := getBuf()
	if req.ContentLength > 0 {
		// Compressed bodies grow; 4x is a cheap guess that avoids most
		// regrowth. Capped, so that a client announcing a big body and
		// sending nothing cannot make us allocate the whole limit up front.
		want := req.ContentLength
		if contentEncoding == "gzip" || contentEncoding == "zstd" {
			want *= 4
		}
		buf.Grow(int(min(want, max, 4<<20)) + bytes.MinRead)
	}
	// One byte over the limit tells "exactly max" from "more than max".
	_, err = buf.ReadFrom(io.LimitReader(src, max+1))
	if err != nil {
		putBuf(buf)
		return nil, bodyReadError(contentEncoding, err, max)
	}
	if int64(buf.Len()) > max {
		putBuf(buf)
		if contentEncoding == "gzip" || contentEncoding == "zstd" {
			return nil, tooLarge(fmt.Sprintf("decompressed request body exceeds the limit of %d bytes", max))
		}
		return nil, tooLarge(fmt.Sprintf("request body exceeds the limit of %d bytes", max))
	}
	return buf, nil
}

func bodyReadError(contentEncoding string, err error, max int64) *exportError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(fmt.Sprintf("request body exceeds the limit of %d bytes", max))
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return tooLarge(fmt.Sprintf("decompressing zstd body: %v", err))
	}
	if contentEncoding == "gzip" || contentEncoding == "zstd" {
		return invalidArgument(fmt.Sprintf("decompressing %s body: %v", contentEncoding, err))
	}
	return invalidArgument(fmt.Sprintf("reading request body: %v", err))
}

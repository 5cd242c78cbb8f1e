package columnar

import "bytes"

func bytesContains(h, n []byte) bool { return bytes.Contains(h, n) }

package logql

import "errors"

func errorsIsStd(err, target error) bool { return errors.Is(err, target) }

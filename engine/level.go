package engine

import "go.uber.org/zap/zapcore"

type zapLevel = zapcore.Level

const (
	zapDebug = zapcore.DebugLevel
	zapInfo  = zapcore.InfoLevel
	zapWarn  = zapcore.WarnLevel
	zapError = zapcore.ErrorLevel
)

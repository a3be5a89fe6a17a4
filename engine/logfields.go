package engine

import "go.uber.org/zap"

func zapRun(id string) zap.Field      { return zap.String("run", id) }
func zapNode(id string) zap.Field     { return zap.String("node", id) }
func zapString(k, v string) zap.Field { return zap.String(k, v) }

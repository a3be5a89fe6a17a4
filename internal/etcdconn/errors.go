package etcdconn

import (
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code returns the gRPC code of an error from etcd's client; ok is false
// for an error that carries none (a context's, a dial's).
func Code(err error) (code codes.Code, ok bool) {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code(), true
	}
	if st, ok := status.FromError(err); ok {
		return st.Code(), true
	}
	return codes.Unknown, false
}

// Refused reports whether etcd refused a request for what it holds (too
// many operations, too large, not allowed) rather than for its own state
// (no leader, no quorum, unreachable): sent again, it would be refused
// again.
func Refused(err error) bool {
	code, ok := Code(err)
	if !ok {
		return false
	}
	switch code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition,
		codes.OutOfRange, codes.NotFound, codes.AlreadyExists, codes.Unimplemented, codes.DataLoss:
		return true
	}
	return false
}

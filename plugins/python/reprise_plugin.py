"""reprise_plugin: what every reprise plugin written in Python needs.

It does the parts of the contract (plugins/proto/README.md) that are the
same for every plugin, so that a vendor's file holds only its restore logic:

  * refuses to run when not started by reprise (the magic cookie);
  * AutoMTLS: a fresh self-signed server certificate for "localhost", a
    client certificate required and checked against PLUGIN_CLIENT_CERT;
  * serves gRPC on a Unix socket and prints the handshake line on stdout;
  * go-plugin's plugin.GRPCController/Shutdown, so that reprise can end the
    process cleanly;
  * exits when reprise dies (the parent process changes);
  * hclog JSON log lines on stderr (log());
  * listed_point(), one point of the optional ListRestorePoints answer (a
    plugin that implements it sets lists_restore_points=True in Describe).

Dependencies: Debian's python3-grpcio, python3-protobuf and
python3-cryptography (apt-get install python3-grpcio python3-protobuf
python3-cryptography). The generated code of the contract is in gen/,
beside this file.
"""

import base64
import datetime
import json
import os
import shutil
import sys
import tempfile
import threading
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from reprise.plugin.v1 import plugin_pb2 as pb  # noqa: E402,F401  (re-exported for plugins)
from reprise.plugin.v1 import plugin_pb2_grpc as pb_grpc  # noqa: E402

MAGIC_COOKIE_KEY = "REPRISE_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "7c1f3e0b-reprise-plugin"
CORE_PROTOCOL = 1  # go-plugin's
APP_PROTOCOL = 1  # the reprise contract's

_log_lock = threading.Lock()


def log(level, message, **fields):
    """Writes one hclog JSON line on stderr: reprise logs it at `level`
    (trace, debug, info, warn, error) with `fields` as fields. @message,
    @level and @timestamp must be strings, the timestamp with exactly six
    fractional digits. Never log a node's config: it may hold secrets."""
    now = datetime.datetime.now(datetime.timezone.utc)
    entry = {"@level": level, "@message": str(message),
             "@timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"}
    entry.update({k: v for k, v in fields.items() if not k.startswith("@")})
    line = json.dumps(entry, default=str)
    with _log_lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def listed_point(id, time, path=None, size=0, needs_staging=False):
    """One restore point for a ListRestorePoints answer (plugins/proto/README.md,
    "Listing restore points"): `time` is a timezone-aware datetime, sent in
    UTC as RFC 3339; give either `path` (the point's absolute folder, under
    one of the node's restore_points.roots) or needs_staging=True (reprise
    then calls StageRestorePoint before reading it). Raises ValueError for
    what reprise would refuse anyway."""
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError("restore point %r: time %s has no timezone (want an aware datetime)" % (id, time))
    if bool(path) == bool(needs_staging):
        raise ValueError("restore point %r: give either path or needs_staging=True" % (id,))
    if path and not os.path.isabs(path):
        raise ValueError("restore point %r: path %r is not absolute" % (id, path))
    utc = time.astimezone(datetime.timezone.utc)
    return pb.ListedRestorePoint(id=id, time=utc.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if not utc.microsecond else ".%06dZ" % utc.microsecond),
                                 size_bytes=max(int(size), 0), path=path or "", needs_staging=bool(needs_staging))


def _server_certificate():
    """A self-signed certificate for the DNS name localhost (the name the
    host checks), ECDSA P-256, with serverAuth among its extended key uses.
    Returns (certificate PEM, key PEM, certificate DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, cert.public_bytes(serialization.Encoding.DER)


def _watch_parent(stop):
    """Sets stop when the process that started us (reprise) is gone."""
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            log("warn", "reprise is gone: exiting")
            stop.set()


def serve(servicer, max_workers=16):
    """Serves servicer (a pb_grpc.PluginServicer) the way reprise expects,
    until reprise asks the plugin to shut down or dies. Does not return."""
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write("This is a reprise plugin: reprise starts it (declare it under `plugins:` in a graph).\n")
        sys.exit(1)
    versions = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",")
    if str(APP_PROTOCOL) not in [v.strip() for v in versions]:
        sys.stderr.write("reprise speaks protocol versions %r; this plugin speaks %d\n" % (versions, APP_PROTOCOL))
        sys.exit(1)
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "").encode()
    if not client_cert:
        sys.stderr.write("PLUGIN_CLIENT_CERT is not set: reprise always sends its client certificate\n")
        sys.exit(1)

    cert_pem, key_pem, cert_der = _server_certificate()
    creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert,
                                        require_client_auth=True)
    stop = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    pb_grpc.add_PluginServicer_to_server(servicer, server)

    def shutdown(_request, _context):
        stop.set()
        return b""

    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("plugin.GRPCController", {
        "Shutdown": grpc.unary_unary_rpc_method_handler(
            shutdown, request_deserializer=lambda b: b, response_serializer=lambda r: b""),
    }),))

    sock_dir = tempfile.mkdtemp(prefix="reprise-plugin-")
    sock = os.path.join(sock_dir, "plugin.sock")
    server.add_secure_port("unix:" + sock, creds)
    server.start()
    cert_b64 = base64.b64encode(cert_der).decode("ascii").rstrip("=")
    sys.stdout.write("%d|%d|unix|%s|grpc|%s\n" % (CORE_PROTOCOL, APP_PROTOCOL, sock, cert_b64))
    sys.stdout.flush()
    # From here on, write nothing to stdout: logs go to stderr.
    sys.stdout = sys.stderr

    threading.Thread(target=_watch_parent, args=(stop,), daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop(grace=2).wait()
    shutil.rmtree(sock_dir, ignore_errors=True)
    sys.exit(0)

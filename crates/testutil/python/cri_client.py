"""A CRI client on grpcio (gRPC's C core), for the tests that check that
criguard serves every gRPC client containerd serves, not only grpc-go.

The channel is made exactly as a Python program would make it, with no
options: over a unix socket, grpcio then sends the socket path,
percent-encoded, as `:authority`. The stubs are generated from the upstream
CRI definition at every run, into a temporary directory, so nothing
generated is kept.

Usage: cri_client.py SOCKET PROTO_DIR CALLS
  SOCKET     the CRI socket (an absolute path)
  PROTO_DIR  the directory holding the upstream api.proto
  CALLS      a JSON list of calls, each {"method": M, ...}: Version,
             ListImages, ImageStatus ("image") or PullImage ("image",
             "namespace")

Prints one JSON document: {"grpcio": VERSION, "results": [...]}, a result
per call in order, {"method": M, "ok": true, "response": {...}} (the
response as protobuf's JSON mapping, field names as in the .proto) or
{"method": M, "ok": false, "code": "UNKNOWN", "details": "..."}.
"""

import json
import os
import sys
import tempfile

import grpc
from google.protobuf import json_format
from grpc_tools import protoc

# Below the harness's own time-out, so a stuck call is reported as a
# DEADLINE_EXCEEDED result instead of a killed process.
CALL_TIMEOUT_SECONDS = 60


def generate_stubs(proto_dir, out_dir):
    """api_pb2 and api_pb2_grpc from PROTO_DIR/api.proto, into OUT_DIR."""
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    status = protoc.main(
        [
            "grpc_tools.protoc",
            "-I" + proto_dir,
            "-I" + include,
            "--python_out=" + out_dir,
            "--grpc_python_out=" + out_dir,
            os.path.join(proto_dir, "api.proto"),
        ]
    )
    if status != 0:
        sys.exit("generating the CRI stubs from %s failed" % proto_dir)
    sys.path.insert(0, out_dir)


def image_spec(api, call):
    return api.ImageSpec(image=call["image"])


def make_request(api, call):
    method = call["method"]
    if method == "Version":
        return api.VersionRequest()
    if method == "ListImages":
        return api.ListImagesRequest()
    if method == "ImageStatus":
        return api.ImageStatusRequest(image=image_spec(api, call))
    if method == "PullImage":
        sandbox = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(
                name="pod", uid="uid-1", namespace=call.get("namespace", "default")
            )
        )
        return api.PullImageRequest(
            image=image_spec(api, call), sandbox_config=sandbox
        )
    sys.exit("unknown method %r" % method)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    socket, proto_dir, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with tempfile.TemporaryDirectory(prefix="cri-stubs-") as stubs:
        generate_stubs(proto_dir, stubs)
        import api_pb2 as api
        import api_pb2_grpc as api_grpc

        results = []
        # The target as the kubelet and crictl write it; no channel options.
        with grpc.insecure_channel("unix://" + socket) as channel:
            runtime = api_grpc.RuntimeServiceStub(channel)
            images = api_grpc.ImageServiceStub(channel)
            for call in calls:
                method = call["method"]
                stub = runtime if method == "Version" else images
                request = make_request(api, call)
                try:
                    response = getattr(stub, method)(
                        request, timeout=CALL_TIMEOUT_SECONDS
                    )
                    results.append(
                        {
                            "method": method,
                            "ok": True,
                            "response": json_format.MessageToDict(
                                response, preserving_proto_field_name=True
                            ),
                        }
                    )
                except grpc.RpcError as e:
                    results.append(
                        {
                            "method": method,
                            "ok": False,
                            "code": e.code().name,
                            "details": e.details(),
                        }
                    )
    json.dump({"grpcio": grpc.__version__, "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

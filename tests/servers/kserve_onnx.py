"""A KServe model server (Open Inference Protocol, REST and gRPC) that serves an exported SEAL
Lab model folder's model.onnx through onnxruntime on the CPU. The integration tests start it
on loopback ports.

--declare-metadata makes the model's metadata list its inputs and the `logits` output, as
Triton does; without it the metadata lists none, as KServe's custom models do.

--faults FILE reads FILE before each inference: {"status": 503, "count": 3, "retry_after": 1}
answers the next `count` requests with that status instead of scoring them (the count is
written back), over REST with a `Retry-After` header of that many seconds when `retry_after`
is given, so tests can watch a client retry, wait or give up; with "after": N the first N
inferences are answered before the fault applies; {"delay": 0.05} answers every
request that much later (a slow replica). Every inference is appended to the file's "seen"
list as [unix time, status answered]. --json-outputs answers typed JSON
data even when the client asks for raw binary outputs.
"""

import argparse
import json
import os
import time

import grpc.aio
import numpy as np
import onnxruntime as ort
from fastapi import HTTPException
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.errors import InvalidInput, ModelNotReady

DTYPES = {"tensor(int64)": "INT64", "tensor(int32)": "INT32", "tensor(float)": "FP32"}


class Injected(Exception):
    pass


class OnnxRewardModel(Model):
    def __init__(self, name, folder, declare, faults, json_outputs, threads):
        super().__init__(name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            os.path.join(folder, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.declare = declare
        self.faults = faults
        self.json_outputs = json_outputs
        self.ready = True

    def get_input_types(self):
        if not self.declare:
            return []
        return [
            {"name": i.name, "datatype": DTYPES[i.type], "shape": [-1, -1]}
            for i in self.session.get_inputs()
        ]

    def get_output_types(self):
        if not self.declare:
            return []
        return [{"name": "logits", "datatype": "FP32", "shape": [-1, 1]}]

    def injected_fault(self):
        if not self.faults or not os.path.exists(self.faults):
            return
        with open(self.faults) as f:
            fault = json.load(f)
        if fault.get("after", 0) > 0:
            # Not yet: this many inferences are answered first.
            fault["after"] -= 1
            status = 200
        else:
            status = fault.get("status", 200) if fault.get("count", 0) > 0 else 200
        fault.setdefault("seen", []).append([time.time(), status])
        if status != 200:
            fault["count"] -= 1
        # Replaced whole, so that a test reading it meanwhile never sees half of it.
        with open(self.faults + ".tmp", "w") as f:
            json.dump(fault, f)
        os.replace(self.faults + ".tmp", self.faults)
        time.sleep(fault.get("delay", 0))
        if status == 200:
            return
        if status == 503 and fault.get("retry_after") is not None:
            raise HTTPException(503, "injected fault", headers={"Retry-After": str(fault["retry_after"])})
        if status == 400:
            raise InvalidInput("injected fault")
        if status == 503:
            busy = ModelNotReady(self.name, "injected fault")
            # KServe's gRPC error mapping reads `reason`, which this exception lacks.
            busy.reason = str(busy)
            raise busy
        raise RuntimeError(f"injected fault {status}")

    def predict(self, payload: InferRequest, headers=None):
        self.injected_fault()
        feed = {}
        wanted = {i.name: i.type for i in self.session.get_inputs()}
        for tensor in payload.inputs:
            if tensor.name not in wanted:
                raise InvalidInput(f"unexpected input {tensor.name}")
            array = tensor.as_numpy()
            feed[tensor.name] = array.astype(np.int64 if wanted[tensor.name] == "tensor(int64)" else array.dtype)
        missing = set(wanted) - set(feed)
        if missing:
            raise InvalidInput(f"missing inputs {sorted(missing)}")
        (logits,) = self.session.run(None, feed)[:1]
        logits = np.ascontiguousarray(logits, dtype=np.float32)
        out = InferOutput(name="logits", shape=list(logits.shape), datatype="FP32")
        out.set_data_from_numpy(logits, binary_data=False)
        if self.json_outputs:
            return InferResponse(model_name=self.name, infer_outputs=[out], response_id=payload.id or "")
        return InferResponse(
            model_name=self.name,
            infer_outputs=[out],
            response_id=payload.id or "",
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )


def exclusive_grpc_ports():
    """gRPC servers share a port by default (SO_REUSEPORT), so a second server started on a
    taken port would quietly take half of the first one's connections. Without it, a taken
    port fails to bind and the server exits, for the test to start it on other ports."""
    make = grpc.aio.server

    def server(*args, options=None, **kwargs):
        return make(*args, options=[*(options or []), ("grpc.so_reuseport", 0)], **kwargs)

    grpc.aio.server = server


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--declare-metadata", action="store_true")
    p.add_argument("--faults")
    p.add_argument("--json-outputs", action="store_true", help="answer typed JSON data even when raw is asked")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    a = p.parse_args()
    exclusive_grpc_ports()
    model = OnnxRewardModel(a.name, a.model_dir, a.declare_metadata, a.faults, a.json_outputs, a.threads)
    ModelServer(http_port=a.http_port, grpc_port=a.grpc_port, workers=1).start([model])


if __name__ == "__main__":
    main()

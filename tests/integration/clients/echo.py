"""A client script without a Kafka client, for the harness's own tests of
ClientProcess and run_client (test_harness.py). Emits "started", then per
stdin command: {"op": "echo", ...} emits "reply" with the command's fields;
{"op": "fail"} raises (child.main: a "fatal" event, exit 2); {"op": "exit",
"code": N} exits N at once, without a result; {"op": "stop"} or EOF emits
"result" and exits 0."""

import sys
import time

import child
from child import emit


def run():
    commands = child.Commands()
    emit("started")
    while True:
        cmd = commands.get()
        if cmd is None:
            time.sleep(0.01)
            continue
        op = cmd.get("op")
        if op == "echo":
            emit("reply", **{k: v for k, v in cmd.items() if k != "op"})
        elif op == "fail":
            raise RuntimeError("asked to fail")
        elif op == "exit":
            sys.stdout.flush()
            sys.exit(int(cmd.get("code", 0)))
        elif op in ("stop", "eof"):
            emit("result", ok=True)
            return
        else:
            emit("bad_command", command=cmd)


if __name__ == "__main__":
    child.main(run)

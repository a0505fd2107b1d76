"""Plumbing shared by the client scripts in this directory (they run as
child processes of the integration tests, under the client virtualenv's
python or Debian's /usr/bin/python3; see vltava_test.ClientProcess).

stdout carries one JSON object per line, each with "ev" (what happened) and
"t" (wall-clock seconds); stdin carries one JSON command per line. Nothing
else may print to stdout: client libraries log to stderr.
"""

import argparse
import json
import os
import queue
import sys
import threading
import time
import traceback

_out = sys.stdout
_lock = threading.Lock()


def emit(ev, **fields):
    fields["ev"] = ev
    fields["t"] = time.time()
    line = json.dumps(fields, sort_keys=True)
    with _lock:
        _out.write(line + "\n")
        _out.flush()


def log(msg):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Commands:
    """stdin's JSON commands, read by a thread; get() never blocks. EOF on
    stdin reads as {"op": "eof"}."""

    def __init__(self):
        self.q = queue.Queue()
        t = threading.Thread(target=self._read, daemon=True)
        t.start()

    def _read(self):
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                self.q.put(json.loads(line))
            except ValueError:
                emit("bad_command", line=line)
        self.q.put({"op": "eof"})

    def get(self):
        try:
            return self.q.get_nowait()
        except queue.Empty:
            return None


def main(fn):
    """Runs fn(); an exception becomes a "fatal" event and exit code 2."""
    try:
        fn()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - reported to the test
        emit("fatal", error=repr(e), traceback=traceback.format_exc())
        log(traceback.format_exc())
        sys.stdout.flush()
        os._exit(2)
    sys.stdout.flush()


def watchdog(seconds, what="the client"):
    """Ends the process (a "fatal" event, exit 3) after seconds, whatever a
    client library is blocked in (kafka-python 2.0.2's poll() waits for a
    coordinator without a timeout)."""

    def fire():
        emit("fatal", error="%s did not finish within %ss" % (what, seconds))
        sys.stdout.flush()
        os._exit(3)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


def kv_list(items):
    """["a=b", ...] -> {"a": "b"}."""
    out = {}
    for item in items or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def group_script_args(prefix):
    """The arguments of kp_group.py and aiok_group.py: --produce N records
    "<prefix>-<i>", then a group consumer of --expect records, within
    --timeout seconds (a watchdog ends the process 60 s later)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--prefix", default=prefix)
    ap.add_argument("--produce", type=int, default=0)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args()
    watchdog(args.timeout + 60)
    return args

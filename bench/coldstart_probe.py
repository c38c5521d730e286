"""Run in a FRESH interpreter by bench/cold_start.py: load one function the way the Lambda Python
runtime does (import the handler module `app` from the function's folder), optionally invoke it
once, and print the timings as one JSON line.

    PYTHONPATH=functions/<function>:layers/feed_core \
        python bench/coldstart_probe.py <function> [--invoke EVENT_JSON_FILE]

The caller sets the import path as Lambda does, through PYTHONPATH: the code folder
(LAMBDA_TASK_ROOT) first, then the layer (/opt/python). Only the standard library is imported
before the timer starts.

After the timer, the probe also reports the loaded modules whose file lies neither on PYTHONPATH
nor in the standard library (`foreign_modules`): none when the interpreter is isolated the way
bench/lambda_layer.py starts it, so that only the function folder and the layer are importable.
"""

import time

T_START = time.perf_counter()

import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def foreign_modules() -> dict:
    import os
    import sysconfig

    paths = sysconfig.get_paths()
    allowed = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    allowed += [paths["stdlib"], paths["platstdlib"]]
    roots = tuple(os.path.join(os.path.realpath(p), "") for p in allowed)
    foreign = sorted(
        {
            name.partition(".")[0]
            for name, mod in list(sys.modules.items())
            if getattr(mod, "__file__", None)
            and not os.path.realpath(mod.__file__).startswith(roots)
            and name != "__main__"
        }
    )
    return {"foreign_modules": len(foreign), "foreign_examples": foreign[:8]}


def main() -> None:
    name = sys.argv[1]
    invoke = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--invoke" else None
    t0 = time.perf_counter()
    module = importlib.import_module("app")
    t_init = time.perf_counter() - t0
    out = {
        "function": name,
        "init_ms": round(t_init * 1000, 2),
        "since_interpreter_start_ms": round((time.perf_counter() - T_START) * 1000, 2),
        "modules_loaded": len(sys.modules),
        "xray_imported": "aws_xray_sdk" in sys.modules,
        "fastapi_imported": "fastapi" in sys.modules,
        **foreign_modules(),
    }
    if invoke:
        spec = json.loads(Path(invoke).read_text())

        class Context:
            function_name = name
            function_version = "$LATEST"
            invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
            memory_limit_in_mb = 512
            aws_request_id = "cold-start-probe"
            log_group_name = f"/aws/lambda/{name}"
            log_stream_name = "probe"

            def get_remaining_time_in_millis(self) -> int:
                return 30_000

        t1 = time.perf_counter()
        result = module.handler(spec["event"], Context())
        out["first_invoke_ms"] = round((time.perf_counter() - t1) * 1000, 2)
        status = result.get("statusCode") if isinstance(result, dict) else None
        out["first_invoke_status"] = status
        t2 = time.perf_counter()
        module.handler(spec["event"], Context())
        out["second_invoke_ms"] = round((time.perf_counter() - t2) * 1000, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Run one StableToolBench inference entry point on scripted model replies (child process).

    python upstream_runner.py --stb-src DIR --replies R.json --record OUT.json \
        --entry toolbench/inference/qa_pipeline_multithread.py -- <upstream arguments>

Runs the entry point exactly as `PYTHONPATH=./ python <entry> <arguments>` from the StableToolBench root
(sys.path[0] = the script's folder, then the root), after:
- empty modules for `peft`, `sentence_transformers` and `pandas`, which only the LoRA class and the retriever
  use (neither is constructed with --backbone_model toolllama / toolllama_vllm / chatgpt_function and no
  retrieval);
- fake_llm.install_hf / install_vllm (scripted text in place of model weights; see fake_llm.py);
  with --backbone_model chatgpt_function nothing is installed: upstream's ChatGPTFunction and the real openai SDK
  talk to `--base_url` (make_fixtures' services.ScriptedChat), and the record file holds no model calls.
Everything else, including `time.sleep(2)` per API call and the answer writing, is upstream's.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import traceback
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent


def stub_unused_modules() -> None:
    for name in ("peft", "sentence_transformers", "pandas"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["peft"].PeftModel = None
    sys.modules["sentence_transformers"].SentenceTransformer = None
    sys.modules["sentence_transformers"].util = None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stb-src", required=True)
    parser.add_argument("--entry", required=True, help="path relative to the StableToolBench root")
    parser.add_argument("--replies", required=True)
    parser.add_argument("--record", required=True)
    ours, upstream_args = parser.parse_known_args()
    if upstream_args and upstream_args[0] == "--":
        upstream_args = upstream_args[1:]

    root = Path(ours.stb_src).resolve()
    entry = root / ours.entry
    os.chdir(root)
    sys.path[:0] = [str(entry.parent), str(root)]
    sys.path.append(str(HERE))
    stub_unused_modules()

    import fake_llm

    script = fake_llm.Script(json.loads(Path(ours.replies).read_text(encoding="utf-8")))
    backbone = upstream_args[upstream_args.index("--backbone_model") + 1]
    if backbone == "toolllama":
        fake_llm.install_hf(script)
    elif backbone == "toolllama_vllm":
        fake_llm.install_vllm(script)
    elif backbone == "chatgpt_function":
        pass  # the real ChatGPTFunction and openai SDK; the scripted chat server answers and records
    else:
        raise SystemExit(f"unsupported --backbone_model {backbone}")

    sys.argv = [str(entry.relative_to(root))] + upstream_args
    status = 0
    error = None
    try:
        runpy.run_path(str(entry), run_name="__main__")
    except BaseException:  # noqa: BLE001 - record whatever upstream raised (SystemExit too)
        error = traceback.format_exc()
        status = 1
    fake_llm.dump(script, ours.record)
    if error:
        record = json.loads(Path(ours.record).read_text(encoding="utf-8"))
        record["exception"] = error
        Path(ours.record).write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
        print(error, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

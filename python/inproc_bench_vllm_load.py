"""Load driver for inproc-bench: many requests in one in-process vLLM engine.

The inproc-bench binary embeds this file (include_str!) beside
inproc_bench_vllm.py and wraps that file's Driver (the same engine, loaded
the same way). Requests are added as the caller's schedule admits them; each
`step()` runs one engine step and returns, per request, how many new tokens
it produced and whether it finished. Timing is not done here: the caller
stamps its own monotonic clock when step() returns.

Requests ask for their output once, when they finish (output_kind
FINAL_ONLY), as vLLM's offline LLM.generate does: the per-step counts are
read from the engine core's own outputs of the step (request id and new
token ids), kept by a thin wrapper around engine_core.get_output, so no
RequestOutput is built per request per step and nothing is detokenized.

    LoadDriver(driver)
        .limits() -> dict (max_num_seqs, max_model_len, vocab_size)
        .prompt_ids(text) -> list[int]
        .add(id, prompt_ids, max_tokens, ignore_eos, temperature, seed)
        .step() -> list[(id, n_new, finish_reason | None, token_ids | None)]
                   (a finished request's generated token ids, for the digest)
        .in_flight() -> int
        .abort_all()
"""

from __future__ import annotations

import uuid

__all__ = ["LoadDriver"]


class LoadDriver:
    """Several requests in flight in one vLLM engine, stepped by the caller."""

    def __init__(self, driver):
        self.d = driver
        self.engine = driver.engine
        self._tag = uuid.uuid4().hex[:8]
        # The engine's own (internal) request id -> ours, and the id we gave
        # vLLM (its RequestOutput's) -> the internal one.
        self._live: dict[str, int] = {}
        self._internal: dict[str, str] = {}
        self._core_outputs: list = []
        core = self.engine.engine_core
        get_output = core.get_output

        def keep_outputs():
            outputs = get_output()
            self._core_outputs = outputs.outputs
            return outputs

        core.get_output = keep_outputs

    def limits(self) -> dict:
        cfg = self.engine.vllm_config
        tok = self.d.tokenizer
        try:
            vocab = len(tok)
        except TypeError:
            vocab = int(getattr(tok, "vocab_size", 0) or 0)
        return {
            "max_num_seqs": int(cfg.scheduler_config.max_num_seqs),
            "max_model_len": int(cfg.model_config.max_model_len),
            "vocab_size": int(cfg.model_config.get_vocab_size() or vocab),
        }

    def prompt_ids(self, text: str) -> list[int]:
        return [int(t) for t in self.d._encode(text)]

    def add(self, id: int, prompt_ids, max_tokens: int, ignore_eos: bool,
            temperature: float, seed) -> None:
        params = self.d._SamplingParams(
            n=1,
            temperature=float(temperature),
            max_tokens=int(max_tokens),
            ignore_eos=bool(ignore_eos),
            seed=seed,
            output_kind=self.d._FINAL_ONLY,
            detokenize=False,
        )
        (engine_input,) = self.engine.renderer.render_cmpl(
            [self.d._TokensPrompt(prompt_token_ids=[int(t) for t in prompt_ids])]
        )
        rid = f"inproc-bench-load-{self._tag}-{id}"
        internal = self.engine.add_request(rid, engine_input, params)
        self._live[internal] = int(id)
        self._internal[rid] = internal

    def step(self) -> list:
        self._core_outputs = []
        finished = self.engine.step()
        events = []
        live = self._live
        for core_out in self._core_outputs:
            id = live.get(core_out.request_id)
            if id is not None and core_out.new_token_ids:
                events.append((id, len(core_out.new_token_ids), None, None))
        for out in finished:
            if not out.finished:
                continue
            internal = self._internal.pop(out.request_id, None)
            id = live.pop(internal, None) if internal is not None else None
            if id is None:
                continue
            completion = out.outputs[0]
            events.append((id, 0, str(completion.finish_reason),
                           [int(t) for t in completion.token_ids or ()]))
        if live and not self.engine.has_unfinished_requests():
            lost = list(live.values())
            live.clear()
            self._internal.clear()
            events.extend((id, 0, "lost", None) for id in lost)
        return events

    def in_flight(self) -> int:
        return len(self._live)

    def abort_all(self) -> None:
        live = list(self._internal)
        self._live.clear()
        self._internal.clear()
        if not live:
            return
        try:
            self.engine.abort_request(live)
            for _ in range(4):
                if not self.engine.has_unfinished_requests():
                    break
                self.engine.step()
        except Exception:
            pass

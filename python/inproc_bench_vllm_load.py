"""Load driver for inproc-bench: many requests in one in-process vLLM engine.

The inproc-bench binary embeds this file (include_str!) beside
inproc_bench_vllm.py and wraps that file's Driver (the same engine, loaded
the same way). Requests are added as the caller's schedule admits them; each
`step()` runs one engine step and returns, per request, how many new tokens
it produced and whether it finished. Timing is not done here: the caller
stamps its own monotonic clock when step() returns.

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
        self._live: dict[str, int] = {}
        self._ids: dict[str, list] = {}

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
            output_kind=self.d._DELTA,
            detokenize=False,
        )
        (engine_input,) = self.engine.renderer.render_cmpl(
            [self.d._TokensPrompt(prompt_token_ids=[int(t) for t in prompt_ids])]
        )
        rid = f"inproc-bench-load-{self._tag}-{id}"
        self.engine.add_request(rid, engine_input, params)
        self._live[rid] = int(id)
        self._ids[rid] = []

    def step(self) -> list:
        events = []
        for out in self.engine.step():
            id = self._live.get(out.request_id)
            if id is None:
                continue
            completion = out.outputs[0]
            new = completion.token_ids or ()
            n = len(new)
            ids = self._ids.get(out.request_id)
            if ids is not None:
                ids.extend(new)
            finish = None
            done_ids = None
            if out.finished:
                finish = str(completion.finish_reason)
                del self._live[out.request_id]
                done_ids = [int(t) for t in self._ids.pop(out.request_id, ())]
            if n or finish is not None:
                events.append((id, n, finish, done_ids))
        if self._live and not self.engine.has_unfinished_requests():
            lost = list(self._live.values())
            self._live.clear()
            self._ids.clear()
            events.extend((id, 0, "lost", None) for id in lost)
        return events

    def in_flight(self) -> int:
        return len(self._live)

    def abort_all(self) -> None:
        live = list(self._live)
        self._live.clear()
        self._ids.clear()
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

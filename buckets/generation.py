"""Bucketed generation on a transformers Llama-architecture model: B contexts x N bases in one batch.

Batch rows are context-major: row ``i * N + k`` is context i under base ``bases[k]``. Every row
has its own RoPE base (cos/sin gathered from tables built once, `buckets.rope`) and its own KV in a
transformers `DynamicCache` that grows in place (`buckets.growing_cache`); the N next-token logits of
a context are fused (`buckets.fusion`) and the one sampled token is fed back to all N rows.

Padding layout. Each context's sequence is ``[pad | cached prefix | pad | new suffix]``: cached
prefix KV (from the `PrefixCache`) is right-aligned in the first ``max_cached`` columns and the new
tokens right-aligned after it, so the last input column is every context's last prompt token. The
2-D attention mask marks real tokens and position ids come from its cumsum, so holes change
nothing but a little wasted compute.

New contexts are prefilled alone on CPU (no padding mask, so SDPA keeps its causal kernel) or
together on GPU, then stacked under the contexts already decoding, the narrower side padded on
the left. `ContinuousDecoder` does that between decode steps: prompts join and leave a batch in
flight (continuous batching), which is how the `hf` engine serves concurrent trajectories.

Prompt lookup (``prompt_lookup=K``): a greedy context's decode step may also feed up to K draft tokens
copied from its own context (`buckets.prompt_lookup`); it keeps the draft's prefix that its fused greedy
choice confirms plus one token of its own, and the unconfirmed columns become holes in the mask.

Constrained decoding (``DecodeParams(grammar=...)``, `buckets.grammar`): a context's fused logits are
masked to its grammar's allowed tokens before its token is chosen; such a context takes no drafts.

Example (``model``/``tokenizer`` from `toolbench_eval.models.load_model` or any transformers Llama)::

    gen = BucketedGenerator(model, tokenizer, bases=[1e5, 1.75e5, 2.5e5], fusion="max_logit")
    [out] = gen.generate(["Hello"], max_new_tokens=16, stop=("\\n",), return_weights=True)
    out.text, out.finish_reason, out.bucket_weights[0]      # e.g. ('...', 'stop', [0.31, 0.36, 0.33])
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from buckets.attention import gqa_attention
from buckets.fusion import check_fusion_rule, fuse
from buckets.grammar import GrammarMatcher, GrammarTokenizer, mask_logits
from buckets.growing_cache import GrowingLayer, compacting_order, growing_dynamic_cache
from buckets.prefix_cache import PrefixCache
from buckets.prompt_lookup import NgramIndex
from buckets.rope import PerRowRotary, rope_parameters, rope_spec_from_config

# Model families whose decoder has the Llama layout: `model.model.rotary_emb` computed once per
# forward and shared by every layer, RoPE applied before the KV cache update.
BUCKET_MODEL_TYPES = ("llama", "mistral", "qwen2")

GREEDY_BELOW = 1e-5  # temperatures below this decode greedily (ToolBench's own threshold)


@dataclass(frozen=True)
class DecodeParams:
    """How to decode one prompt. `seed` seeds this prompt's own sampler (None: torch's global RNG)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False  # benchmarks: always produce max_new_tokens
    min_new_tokens: int = 0  # an EOS among the first N tokens is kept but does not stop (upstream force_generate)
    grammar: str | None = None  # Lark grammar (llguidance dialect) the completion must match; see buckets.grammar

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(s for s in self.stop if s))


@dataclass
class GenerationResult:
    text: str  # decoded completion, cut before the first stop string, without EOS
    token_ids: list[int]  # every generated token (EOS included when it ended the text)
    prompt_tokens: int
    cached_tokens: int  # prompt tokens whose KV came from the prefix cache
    finish_reason: str  # "stop" (EOS or stop string) | "length"
    bucket_weights: list[list[float]] | None = field(default=None, repr=False)  # [steps][N]
    bucket_logits: Tensor | None = field(default=None, repr=False)  # debug: raw logits [steps, N, V]


def row_seed(seed: int, index: int) -> int:
    """The seed of prompt `index` in a call seeded with `seed`: distinct per prompt, batch-independent.

    >>> row_seed(0, 0) != row_seed(0, 1)
    True
    """
    return (int(seed) * 1_000_003 + int(index)) % (2**63 - 1)


def check_bucket_model(model) -> None:
    """Raise ValueError unless `model` is a causal LM with the Llama decoder layout buckets need."""
    config = model.config
    model_type = getattr(config, "model_type", None)
    if model_type not in BUCKET_MODEL_TYPES:
        raise ValueError(
            f"Attention Buckets needs a Llama-architecture model ({', '.join(BUCKET_MODEL_TYPES)}); "
            f"this model's config has model_type={model_type!r}"
        )
    decoder = model.get_decoder()
    if not hasattr(decoder, "rotary_emb"):
        raise ValueError(f"{type(model).__name__} has no shared rotary_emb module to give per-row bases")
    if getattr(config, "use_sliding_window", False) or (
        model_type == "mistral" and getattr(config, "sliding_window", None)
    ):
        raise ValueError("sliding-window attention is not supported with Attention Buckets")
    rope_spec_from_config(config)  # raises for unsupported RoPE types


def model_base(model) -> float:
    """The model's own RoPE base (`rope_theta`)."""
    return float(rope_parameters(model.config)["rope_theta"])


def _own_base(model) -> float:
    """The model's base for reporting; NaN for models without RoPE (plain decoding only)."""
    try:
        return model_base(model)
    except (AttributeError, KeyError, TypeError, ValueError):
        return float("nan")


@dataclass
class DecodeStats:
    """Counters a generator keeps over all its calls (benchmarks report them)."""

    decode_steps: int = 0  # decode forwards (prefills not counted)
    drafted_tokens: int = 0  # prompt-lookup draft tokens fed to the model
    accepted_tokens: int = 0  # draft tokens greedy decoding confirmed


@dataclass
class _Context:
    """Book-keeping for one prompt while it decodes."""

    index: int
    prompt_ids: list[int]
    key: Hashable | None
    params: DecodeParams
    cached_len: int = 0
    cached_kv: list | None = None
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    text: str | None = None
    sampler: torch.Generator | None = None
    weights: list[list[float]] = field(default_factory=list)
    logits: list[Tensor] = field(default_factory=list)
    checked_chars: int = 0
    tag: object = None  # the caller's handle for this prompt (continuous decoding)
    lookup: NgramIndex | None = None  # prompt + generated tokens, for prompt-lookup drafts (greedy only)
    matcher: GrammarMatcher | None = None  # where the completion stands in `params.grammar`


@dataclass
class _Batch:
    """Contexts in flight: rows are context-major (N per context) in `cache`; `mask` is `[contexts, width]`,
    `last_positions` the position of each context's last fed token, `tokens` its sampled, not yet fed, token."""

    contexts: list[_Context]
    cache: object
    mask: Tensor
    last_positions: Tensor
    tokens: Tensor | None


def encode_prompt(tokenizer, prompt: str | Sequence[int], *, add_special_tokens: bool = True) -> list[int]:
    """Token ids of a prompt: text is tokenized, a list of ids is taken as is; empty prompts are refused.
    Every engine encodes through this, so the same prompt reaches each engine as the same tokens."""
    if isinstance(prompt, str):
        ids = tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
    else:
        ids = [int(t) for t in prompt]
    if not ids:
        raise ValueError("cannot generate from an empty prompt (it has no tokens)")
    return list(ids)


class BucketedGenerator:
    """Generate with Attention Buckets on a transformers model: one batched forward for B x N rows.

    `bases=None` decodes like plain `model.generate` with the model's own rotary module (any
    causal LM; batching, stop strings and the prefix cache still apply); the model's own base
    alone goes through the per-row RoPE path and gives the same tokens.
    Calls are serialised by a lock: the model's rotary module is swapped for the call.
    """

    def __init__(
        self,
        model,
        tokenizer,
        bases: Sequence[float] | None = None,
        fusion: str = "max_logit",
        *,
        prefix_cache: PrefixCache | None = None,
        add_special_tokens: bool = True,
        skip_special_tokens: bool = True,
        prefill_batch: int | None = None,
        prompt_lookup: int = 0,
    ) -> None:
        # bases=None is plain decoding with the model's own rotary module: any causal LM works.
        # Explicit bases swap in per-row RoPE, which needs the Llama decoder layout.
        self.plain = not bases
        if not self.plain:
            check_bucket_model(model)
        self.model = model
        self.tokenizer = tokenizer
        self.bases = tuple(float(b) for b in bases) if bases else (_own_base(model),)
        if any(b <= 0 for b in self.bases):
            raise ValueError(f"RoPE bases must be positive, got {list(self.bases)}")
        self.fusion = check_fusion_rule(fusion)
        self.prefix_cache = prefix_cache if prefix_cache is not None else PrefixCache()
        self.add_special_tokens = add_special_tokens
        self.skip_special_tokens = skip_special_tokens
        self.prefill_batch = prefill_batch  # new contexts per prefill forward; None: 1 on CPU, all on GPU
        if int(prompt_lookup) < 0:
            raise ValueError(f"prompt_lookup must be >= 0 draft tokens, got {prompt_lookup}")
        self.prompt_lookup = int(prompt_lookup)  # draft tokens verified per decode step (greedy prompts; 0: off)
        self.stats = DecodeStats()
        self._lock = threading.Lock()
        self._rotary: PerRowRotary | None = None
        self._grammar_tokenizer: GrammarTokenizer | None = None
        self.eos_ids = self._eos_ids()
        self.pad_id = self._pad_id()

    @property
    def n(self) -> int:
        return len(self.bases)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- set-up helpers --------------------------------------------------------------------------

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.model.config, self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if value is None:
                continue
            ids.update([value] if isinstance(value, int) else list(value))
        return ids

    def _pad_id(self) -> int:
        for value in (getattr(self.tokenizer, "pad_token_id", None), *sorted(self.eos_ids), 0):
            if value is not None:
                return int(value)
        return 0

    def _rotary_module(self) -> PerRowRotary:
        dtype = next(self.model.parameters()).dtype
        if self._rotary is None or self._rotary.dtype != dtype or self._rotary.device != self.device:
            spec = rope_spec_from_config(self.model.config)
            self._rotary = PerRowRotary(self.bases, spec, dtype=dtype, device=self.device)
        return self._rotary

    @contextlib.contextmanager
    def _bucketed_rotary(self):
        if self.plain:
            yield None
            return
        decoder = self.model.get_decoder()
        original = decoder.rotary_emb
        decoder.rotary_emb = self._rotary_module()
        try:
            yield decoder.rotary_emb
        finally:
            decoder.rotary_emb = original

    @contextlib.contextmanager
    def _serving(self):
        """What every call holds: the lock, inference mode, per-row RoPE and copy-free GQA attention."""
        with self._lock, torch.inference_mode(), self._bucketed_rotary(), gqa_attention(self.model):
            yield

    def encode(self, prompt: str | Sequence[int]) -> list[int]:
        """Token ids of a prompt (text is tokenized; a list of ids is taken as is)."""
        return encode_prompt(self.tokenizer, prompt, add_special_tokens=self.add_special_tokens)

    def grammar_matcher(self, grammar: str) -> GrammarMatcher:
        """A fresh matcher for `grammar` (GrammarError if it does not compile); the tokenizer's token trie is
        built on first use."""
        if self._grammar_tokenizer is None:
            self._grammar_tokenizer = GrammarTokenizer(self.tokenizer, int(self.model.config.vocab_size), self.eos_ids)
        return self._grammar_tokenizer.matcher(grammar)

    def clear_prefix_cache(self) -> None:
        self.prefix_cache.clear()

    def continuous(self, *, return_weights: bool = False, return_bucket_logits: bool = False) -> ContinuousDecoder:
        """A `ContinuousDecoder` on this generator (prompts join and leave between decode steps)."""
        return ContinuousDecoder(self, return_weights=return_weights, return_bucket_logits=return_bucket_logits)

    # -- public API ------------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str | Sequence[int]],
        params: DecodeParams | Sequence[DecodeParams] | None = None,
        *,
        cache_keys: Sequence[Hashable | None] | None = None,
        return_weights: bool = False,
        return_bucket_logits: bool = False,
        **param_fields,
    ) -> list[GenerationResult]:
        """Complete every prompt; one `GenerationResult` per prompt, in order.

        `params` is one `DecodeParams` for all prompts (a seed then gives prompt i the seed
        `row_seed(seed, i)`) or one per prompt (seeds used as given); keyword fields such as
        ``max_new_tokens=8`` build a shared `DecodeParams`. `cache_keys[i]` names prompt i's
        context in the prefix cache (None: do not cache). `return_bucket_logits` keeps every
        step's raw per-bucket logits (debugging and exactness tests; memory heavy).
        """
        if params is not None and param_fields:
            raise TypeError("pass either params or keyword decode fields, not both")
        if not prompts:
            return []
        if params is None or isinstance(params, DecodeParams):
            shared = params or DecodeParams(**param_fields)
            per_prompt = [
                shared if shared.seed is None else replace(shared, seed=row_seed(shared.seed, i))
                for i in range(len(prompts))
            ]
        else:
            per_prompt = list(params)
            if len(per_prompt) != len(prompts):
                raise ValueError(f"got {len(per_prompt)} DecodeParams for {len(prompts)} prompts")
        keys = list(cache_keys) if cache_keys is not None else [None] * len(prompts)
        if len(keys) != len(prompts):
            raise ValueError(f"got {len(keys)} cache keys for {len(prompts)} prompts")

        contexts = [
            self._new_context(i, self.encode(p), k, pp) for i, (p, k, pp) in enumerate(zip(prompts, keys, per_prompt))
        ]
        todo = [ctx for ctx in contexts if ctx.finish_reason is None]
        if todo:
            with self._serving():
                self._run(todo, return_weights, return_bucket_logits)
        return [self._result(ctx, return_weights, return_bucket_logits) for ctx in contexts]

    def _new_context(self, index: int, prompt_ids: list[int], key: Hashable | None, params: DecodeParams,
                     tag: object = None) -> _Context:
        """Book-keeping for one prompt: its own sampler when seeded; finished at once for max_new_tokens=0."""
        ctx = _Context(index=index, prompt_ids=prompt_ids, key=key, params=params, tag=tag)
        if params.seed is not None and params.temperature >= GREEDY_BELOW:
            ctx.sampler = torch.Generator(device=self.device).manual_seed(params.seed)
        if params.grammar is not None:
            ctx.matcher = self.grammar_matcher(params.grammar)
        if params.max_new_tokens == 0:
            ctx.finish_reason, ctx.text = "length", ""
        elif self.prompt_lookup and params.temperature < GREEDY_BELOW and ctx.matcher is None:
            # Drafts are verified against unmasked greedy tokens, so a constrained prompt decodes without them.
            ctx.lookup = NgramIndex(prompt_ids)
        return ctx

    # -- the decode loop -------------------------------------------------------------------------

    def _run(self, contexts: list[_Context], keep_weights: bool, keep_logits: bool) -> None:
        batch, _ = self._admit(None, contexts, keep_weights, keep_logits)
        while batch is not None:
            batch, _ = self._decode_step(batch, keep_weights, keep_logits)

    def _prefill_group_size(self, count: int) -> int:
        """How many new contexts share one prefill forward.

        On CPU each context is prefilled alone: a padded batch needs an explicit attention mask, which keeps
        SDPA off its causal kernel (measured 1.6-1.8x slower attention for 2 x 1,200 tokens), and a single
        1k-token prompt already fills the matrix units. On GPUs batching amortises launches, so all go together.
        """
        if self.prefill_batch is not None:
            return max(1, int(self.prefill_batch))
        return 1 if self.device.type == "cpu" else max(1, count)

    def _admit(self, batch: _Batch | None, newcomers: list[_Context], keep_weights: bool, keep_logits: bool):
        """Prefill `newcomers`, sample their first token and merge the unfinished ones into `batch`.
        Returns `(batch or None when nothing is left in flight, contexts that finished)`."""
        finished: list[_Context] = []
        group = self._prefill_group_size(len(newcomers))
        for start in range(0, len(newcomers), group):
            chunk = newcomers[start : start + group]
            for ctx in chunk:
                entry, reusable = self.prefix_cache.lookup(ctx.key, ctx.prompt_ids)
                ctx.cached_len, ctx.cached_kv = reusable, (entry.kv if entry is not None else None)
            cache, mask, positions, input_ids = self._prefill_inputs(chunk)
            for ctx in chunk:
                ctx.cached_kv = None  # the batch cache holds a copy now
            logits = self._forward(input_ids, mask, positions, cache)
            for row, ctx in enumerate(chunk):  # later newcomers may borrow this prompt's opening at once
                self._remember(ctx, row, cache, mask)
            fresh = _Batch(chunk, cache, mask, positions[:, -1], None)
            fresh, done = self._take_step(fresh, logits, keep_weights, keep_logits)
            finished += done
            if fresh is not None:
                batch = fresh if batch is None else self._merge(batch, fresh)
        return batch, finished

    def _decode_step(self, batch: _Batch, keep_weights: bool, keep_logits: bool):
        """Feed every context its last sampled token (and its prompt-lookup draft, if any) and take the next
        token(s); returns `(batch or None, finished contexts)`.

        With drafts the step feeds `1 + longest draft` columns: row i gets its token, its draft and pads. Pads
        follow a row's real columns, so causal attention keeps them out of every column that counts; they and
        the drafts the model did not confirm are masked out afterwards (`_take_step`) and stay as holes, which
        the layout tolerates (positions come from the mask)."""
        drafts = [self._draft(ctx) for ctx in batch.contexts]
        columns = 1 + max(map(len, drafts))
        self.stats.decode_steps += 1
        self.stats.drafted_tokens += sum(map(len, drafts))
        input_ids = batch.tokens[:, None]
        if columns > 1:
            padded = [draft + [self.pad_id] * (columns - 1 - len(draft)) for draft in drafts]
            input_ids = torch.cat([input_ids, torch.tensor(padded, dtype=torch.long, device=self.device)], dim=1)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(drafts), columns)], dim=1)
        offsets = torch.arange(1, columns + 1, device=batch.last_positions.device)
        logits = self._forward(input_ids, batch.mask, batch.last_positions[:, None] + offsets, batch.cache,
                               keep=columns)
        return self._take_step(batch, logits, keep_weights, keep_logits, drafts)

    def _draft(self, ctx: _Context) -> list[int]:
        """Prompt-lookup draft for a greedy context, never longer than its remaining token budget allows."""
        if ctx.lookup is None:
            return []
        room = ctx.params.max_new_tokens - len(ctx.generated) - 1  # the step emits up to len(draft) + 1 tokens
        return ctx.lookup.propose(min(self.prompt_lookup, room))

    def _take_step(self, batch: _Batch, logits: Tensor, keep_weights: bool, keep_logits: bool,
                   drafts: list[list[int]] | None = None):
        """Fuse the buckets' logits and take each context's next token(s), retire finished contexts (their KV
        goes to the prefix cache). Returns `(batch or None when all finished, finished contexts)`.

        `logits` is `[contexts*N, columns, V]`. Without `drafts` (a prefill) one token per context is taken
        from the last column. With drafts (a decode step that fed `columns` new columns per context), a
        context keeps its draft's longest prefix that greedy decoding confirms plus the model's own next token,
        and its fed columns past what it kept are masked out."""
        active = batch.contexts
        columns = logits.shape[1]
        per_bucket = logits.view(len(active), self.n, columns, logits.shape[-1]).transpose(1, 2)
        fused, weights = fuse(per_bucket, self.fusion)  # [contexts, columns, V], [contexts, columns, N]
        # Constrained contexts never have drafts, so their token always comes from column 0.
        first = self._sample(mask_logits(fused[:, 0], [ctx.matcher for ctx in active]), active).tolist()
        greedy = fused.argmax(dim=-1).tolist() if columns > 1 else None
        kept = []
        for row, ctx in enumerate(active):
            draft = drafts[row] if drafts else []
            accepted = 0
            while accepted < len(draft) and draft[accepted] == greedy[row][accepted]:
                accepted += 1
            self.stats.accepted_tokens += accepted
            emitted = draft[:accepted] + [greedy[row][accepted]] if draft else [first[row]]
            for column, token in enumerate(emitted):
                if keep_weights:
                    ctx.weights.append(weights[row, column].tolist())
                if keep_logits:
                    ctx.logits.append(per_bucket[row, column].float().cpu().clone())
                self._advance(ctx, token)
                if ctx.finish_reason is not None:
                    emitted = emitted[: column + 1]
                    break
            kept.append(len(emitted))
        if drafts is not None:  # a decode step: `kept` of the fed columns hold tokens that stay in the context
            width = batch.mask.shape[1]
            kept_t = torch.tensor(kept, device=batch.mask.device)
            if columns > 1:
                fed_column = torch.arange(columns, device=batch.mask.device)
                batch.mask[:, width - columns :] *= (fed_column[None, :] < kept_t[:, None]).to(batch.mask.dtype)
            batch.last_positions = batch.last_positions + kept_t.to(batch.last_positions.device)
        tokens = torch.tensor([ctx.generated[-1] for ctx in active], dtype=torch.long, device=self.device)
        finished_rows = [row for row, ctx in enumerate(active) if ctx.finish_reason is not None]
        for row in finished_rows:
            self._remember(active[row], row, batch.cache, batch.mask)
        finished = [active[row] for row in finished_rows]
        batch.tokens = tokens
        if len(finished_rows) == len(active):
            return None, finished
        if finished_rows:
            dropped = set(finished_rows)
            batch = self._select(batch, [row for row in range(len(active)) if row not in dropped])
        return batch, finished

    def _merge(self, first: _Batch, second: _Batch) -> _Batch:
        """One batch holding both batches' contexts: `second`'s rows are stacked under `first`'s in `first`'s
        cache (in place where it has room), the narrower side padded on the left (mask 0)."""
        width = max(first.mask.shape[1], second.mask.shape[1])
        masks = [torch.nn.functional.pad(b.mask, (width - b.mask.shape[1], 0)) for b in (first, second)]
        for layer, incoming in zip(_growing_layers(first.cache), second.cache.layers):
            layer.append_rows(incoming)
        return _Batch(
            first.contexts + second.contexts,
            first.cache,
            torch.cat(masks),
            torch.cat([first.last_positions, second.last_positions]),
            torch.cat([first.tokens, second.tokens]),
        )

    def _prefill_inputs(self, contexts: list[_Context]):
        """Build the batch cache (from prefix-cache entries), mask, positions and input ids."""
        device, n = self.device, self.n
        cached = [ctx.cached_len for ctx in contexts]
        suffixes = [ctx.prompt_ids[ctx.cached_len :] for ctx in contexts]
        max_cached, max_suffix = max(cached), max(len(s) for s in suffixes)
        width = max_cached + max_suffix
        mask = torch.zeros(len(contexts), width, dtype=torch.long)
        input_ids = torch.full((len(contexts), max_suffix), self.pad_id, dtype=torch.long)
        for i, (c, suffix) in enumerate(zip(cached, suffixes)):
            mask[i, max_cached - c : max_cached] = 1
            mask[i, width - len(suffix) :] = 1
            input_ids[i, max_suffix - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)[:, max_cached:]
        cache = growing_dynamic_cache(self.model.config)  # decode steps append in place (no per-step cat)
        if max_cached > 0:
            template = next(ctx.cached_kv for ctx in contexts if ctx.cached_kv is not None)
            for layer_idx, (k0, v0) in enumerate(template):
                keys = k0.new_zeros(len(contexts) * n, k0.shape[1], max_cached, k0.shape[3])
                values = v0.new_zeros(len(contexts) * n, v0.shape[1], max_cached, v0.shape[3])
                for i, ctx in enumerate(contexts):
                    if ctx.cached_kv is None:
                        continue
                    k, v = ctx.cached_kv[layer_idx]
                    c = ctx.cached_len
                    keys[i * n : (i + 1) * n, :, max_cached - c :] = k[:, :, :c]
                    values[i * n : (i + 1) * n, :, max_cached - c :] = v[:, :, :c]
                cache.update(keys, values, layer_idx)
        return cache, mask.to(device), positions.to(device), input_ids.to(device)

    def _forward(self, input_ids: Tensor, mask: Tensor, positions: Tensor, cache, keep: int = 1) -> Tensor:
        """One forward for all contexts x buckets; returns the last `keep` columns' logits `[contexts*N, keep, V]`."""
        n = self.n
        rows = input_ids.shape[0] * n
        if not self.plain:
            self._rotary.set_rows(torch.arange(n, device=self.device).repeat(input_ids.shape[0]))
        out = self.model(
            input_ids=input_ids.repeat_interleave(n, dim=0),
            attention_mask=mask.repeat_interleave(n, dim=0),
            position_ids=positions.repeat_interleave(n, dim=0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=keep,
        )
        return out.logits[:, -keep:, :].reshape(rows, keep, -1)

    def _sample(self, fused: Tensor, contexts: list[_Context]) -> Tensor:
        tokens = fused.argmax(dim=-1)
        for row, ctx in enumerate(contexts):
            temperature = ctx.params.temperature
            if temperature < GREEDY_BELOW:
                continue
            scores = fused[row] / temperature
            if ctx.params.top_p < 1.0:
                scores = top_p_filter(scores, ctx.params.top_p)
            probs = torch.softmax(scores, dim=-1)
            tokens[row] = torch.multinomial(probs, 1, generator=ctx.sampler)[0]
        return tokens

    def _advance(self, ctx: _Context, token: int) -> None:
        """Append a sampled token and decide whether the context is finished."""
        ctx.generated.append(token)
        if ctx.matcher is not None:
            ctx.matcher.advance(token)
        if ctx.lookup is not None:
            ctx.lookup.extend((token,))
        params = ctx.params
        if token in self.eos_ids and not params.ignore_eos and len(ctx.generated) > params.min_new_tokens:
            ctx.finish_reason = "stop"
            return
        if params.stop:
            text = self._decode(ctx.generated)
            longest = max(len(s) for s in params.stop)
            start = max(0, ctx.checked_chars - longest)
            hits = [i for i in (text.find(s, start) for s in params.stop) if i >= 0]
            ctx.checked_chars = len(text)
            if hits:
                ctx.text, ctx.finish_reason = text[: min(hits)], "stop"
                return
        if len(ctx.generated) >= params.max_new_tokens:
            ctx.finish_reason = "length"

    def _remember(self, ctx: _Context, row: int, cache, mask: Tensor) -> None:
        """Copy a context's KV (real tokens only) into the prefix cache under its key: right after its prefill
        (so others can borrow the prompt's opening) and again when it finishes (for its own next call)."""
        if ctx.key is None:
            return
        fed_ids = ctx.prompt_ids + ctx.generated[:-1]  # the last sampled token never went through the model
        columns = mask[row].nonzero().squeeze(-1)
        if len(columns) != len(fed_ids):  # a book-keeping bug would silently poison later calls
            raise RuntimeError(f"prefix cache: {len(columns)} KV columns for {len(fed_ids)} tokens")
        n = self.n
        kv = [
            (
                layer.keys[row * n : (row + 1) * n].index_select(2, columns),
                layer.values[row * n : (row + 1) * n].index_select(2, columns),
            )
            for layer in cache.layers
        ]
        self.prefix_cache.store(ctx.key, fed_ids, kv)

    def _select(self, batch: _Batch, keep: list[int]) -> _Batch:
        """Drop finished contexts from the batch, and leading columns no remaining context uses. Survivors keep
        their rows except those past the new count, which move into the freed rows (`compacting_order`), so
        only the moved rows are copied."""
        n = self.n
        order = compacting_order(keep)
        rows = torch.tensor([r * n + k for r in order for k in range(n)], device=self.device)
        batch.cache.batch_select_indices(rows)
        order_t = torch.tensor(order, device=self.device)
        mask = batch.mask.index_select(0, order_t)
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start > 0:
            mask = mask[:, start:]
            for layer in _growing_layers(batch.cache):
                layer.drop_leading_columns(start)
        return _Batch([batch.contexts[r] for r in order], batch.cache, mask,
                      batch.last_positions.index_select(0, order_t), batch.tokens.index_select(0, order_t))

    def _decode(self, token_ids: list[int]) -> str:
        ids = [t for t in token_ids if t not in self.eos_ids]
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def _result(self, ctx: _Context, keep_weights: bool, keep_logits: bool) -> GenerationResult:
        text = ctx.text if ctx.text is not None else self._decode(ctx.generated)
        return GenerationResult(
            text=text,
            token_ids=list(ctx.generated),
            prompt_tokens=len(ctx.prompt_ids),
            cached_tokens=ctx.cached_len,
            finish_reason=ctx.finish_reason or "length",
            bucket_weights=ctx.weights if keep_weights else None,
            bucket_logits=torch.stack(ctx.logits) if keep_logits and ctx.logits else None,
        )


class ContinuousDecoder:
    """Iteration-level scheduling on a `BucketedGenerator`: prompts join and leave between decode steps.

    `BucketedGenerator.generate` decodes a fixed batch until its longest member ends, so a context that
    finishes early waits for the rest, and a prompt that arrives meanwhile waits for the whole batch. Here
    every `step(...)` first prefills the prompts it is given, then runs one decode step for everything in
    flight, and returns the prompts that just finished. Results equal `generate`'s for the same prompts up
    to float rounding of a different batch composition.

    Example::

        decoder = generator.continuous()
        finished = decoder.step([(prompt_ids, DecodeParams(max_new_tokens=8), "traj-1", "my-handle")])
        while decoder.active:
            finished += decoder.step()          # [(handle, GenerationResult), ...] as prompts end
    """

    def __init__(self, generator: BucketedGenerator, *, return_weights: bool = False,
                 return_bucket_logits: bool = False) -> None:
        self.generator = generator
        self.return_weights = return_weights
        self.return_bucket_logits = return_bucket_logits
        self._batch: _Batch | None = None
        self._lost: list[object] = []

    @property
    def active(self) -> int:
        """Prompts in flight."""
        return 0 if self._batch is None else len(self._batch.contexts)

    def step(self, admit: Sequence[tuple[Sequence[int], DecodeParams, Hashable | None, object]] = ()
             ) -> list[tuple[object, GenerationResult]]:
        """Admit `(prompt_ids, params, cache_key, handle)` tuples, decode one token for every prompt in flight
        and return `(handle, result)` for the prompts that finished. After an exception the decoder is empty:
        the prompts that were in flight are lost and `abandon()` returns their handles (the ones passed to the
        failed call are the caller's to fail)."""
        gen = self.generator
        newcomers, done = [], []
        for ids, params, key, handle in admit:
            ctx = gen._new_context(0, list(ids), key, params, handle)
            (done if ctx.finish_reason is not None else newcomers).append(ctx)
        try:
            with gen._serving():
                batch = self._batch
                if newcomers:
                    batch, finished = gen._admit(batch, newcomers, self.return_weights, self.return_bucket_logits)
                    done += finished
                if batch is not None:
                    batch, finished = gen._decode_step(batch, self.return_weights, self.return_bucket_logits)
                    done += finished
                self._batch = batch
        except BaseException:
            self._lost += self.handles()  # in flight before this step; the state may be half-updated
            self._batch = None
            raise
        return [(ctx.tag, gen._result(ctx, self.return_weights, self.return_bucket_logits)) for ctx in done]

    def handles(self) -> list[object]:
        """The handles of the prompts in flight."""
        return [] if self._batch is None else [ctx.tag for ctx in self._batch.contexts]

    def abandon(self) -> list[object]:
        """Drop everything in flight; returns their handles and those lost to an error (to fail them)."""
        handles = self._lost + self.handles()
        self._batch, self._lost = None, []
        return handles


def _growing_layers(cache) -> list[GrowingLayer]:
    """`cache.layers`, any layer of the model's own kind (plain decoding: a sliding-window layer, say) first
    copied into a `GrowingLayer`, which batches can stack into and compact."""
    for index, layer in enumerate(cache.layers):
        if not isinstance(layer, GrowingLayer):
            grown = GrowingLayer()
            grown.append_rows(layer)
            cache.layers[index] = grown
    return cache.layers


def top_p_filter(scores: Tensor, top_p: float) -> Tensor:
    """Set to -inf every score outside the smallest set whose probability mass reaches `top_p`.

    >>> import torch
    >>> top_p_filter(torch.log(torch.tensor([0.5, 0.3, 0.2])), 0.7).isinf().tolist()
    [False, False, True]
    """
    sorted_scores, order = torch.sort(scores, descending=True)
    probs = torch.softmax(sorted_scores, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= top_p  # the most likely token is always kept (its mass_before is 0)
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, float("-inf"))

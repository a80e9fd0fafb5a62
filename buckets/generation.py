"""Bucketed generation on a transformers Llama-architecture model: B contexts x N bases in one batch.

Every batch row has its own RoPE base (cos/sin from tables built once, `buckets.rope`) and its own KV,
laid out as `buckets.batch_layout` describes; a context's N next-token logits are fused (`buckets.fusion`)
and the token chosen from them (`buckets.sampling`) is fed back to all N rows. One decode loop,
`ContinuousDecoder`, serves both continuous batching (prompts join and leave a batch in flight, which is
how the `hf` engine serves concurrent trajectories) and `BucketedGenerator.generate`.

A greedy context may also feed prompt-lookup drafts (``prompt_lookup=K``, `buckets.prompt_lookup`) and keep
what its own greedy choice confirms; a constrained one (``DecodeParams(grammar=...)``, `buckets.grammar`)
has its fused logits masked to its grammar's allowed tokens and takes no drafts.

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
from buckets.batch_layout import (
    Batch,
    context_kv,
    feed,
    keep_fed,
    merge,
    prefill_inputs,
    prefill_width,
    select,
)
from buckets.fusion import check_fusion_rule, fuse
from buckets.grammar import GrammarMatcher, GrammarTokenizer, mask_logits
from buckets.growing_cache import growing_dynamic_cache, in_spare_rows
from buckets.prefix_cache import PrefixCache
from buckets.prompt_lookup import NgramIndex, accepted_tokens
from buckets.rope import PerRowRotary, rope_parameters, rope_spec_from_config
from buckets.sampling import Sampler, choose_tokens, row_seed

# Model families whose decoder has the Llama layout (`model.model.rotary_emb` computed once per forward
# and shared by every layer, RoPE applied before the KV cache update), each with the RoPE types that
# tests/test_bucket_families.py proves exact (bucket k = a separate model with rope_theta = b_k).
# A pair not listed here is refused: nothing reaches a bucketed forward that was not tested.
BUCKET_ROPE_TYPES: dict[str, tuple[str, ...]] = {
    "llama": ("default", "linear", "llama3", "yarn", "dynamic"),
    "mistral": ("default",),  # full attention only (sliding_window: null)
    "qwen2": ("default", "yarn"),  # qkv bias; Qwen2.5 ships YaRN for long context
}
BUCKET_MODEL_TYPES = tuple(BUCKET_ROPE_TYPES)


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
        stops = (self.stop,) if isinstance(self.stop, str) else self.stop
        object.__setattr__(self, "stop", tuple(s for s in stops if s))


@dataclass
class GenerationResult:
    text: str  # decoded completion, cut before the first stop string, without EOS
    token_ids: list[int]  # every generated token (EOS included when it ended the text)
    prompt_tokens: int
    cached_tokens: int  # prompt tokens whose KV came from the prefix cache
    finish_reason: str  # "stop" (EOS or stop string) | "length"
    bucket_weights: list[list[float]] | None = field(default=None, repr=False)  # [steps][N]
    bucket_logits: Tensor | None = field(default=None, repr=False)  # debug: raw logits [steps, N, V]


def check_bucket_model(model) -> None:
    """Raise ValueError unless `model` is a causal LM with the Llama decoder layout buckets need."""
    check_bucket_config(model.config)
    if not hasattr(model.get_decoder(), "rotary_emb"):
        raise ValueError(f"{type(model).__name__} has no shared rotary_emb module to give per-row bases")


def check_bucket_config(config) -> None:
    """Raise ValueError unless the config's (model_type, rope_type) pair is one buckets were proven exact on,
    with full attention in every layer."""
    model_type = getattr(config, "model_type", None)
    if model_type not in BUCKET_ROPE_TYPES:
        raise ValueError(f"Attention Buckets needs a Llama-architecture model ({', '.join(BUCKET_MODEL_TYPES)}); "
                         f"this model's config has model_type={model_type!r}")
    window = getattr(config, "sliding_window", None)
    if getattr(config, "use_sliding_window", False) or (model_type == "mistral" and window):
        raise ValueError(f"sliding-window attention is not supported with Attention Buckets ({model_type} config has "
                         f"sliding_window={window}, use_sliding_window={getattr(config, 'use_sliding_window', None)}); "
                         "use a full-attention checkpoint (sliding_window: null, use_sliding_window: false)")
    layer_types = getattr(config, "layer_types", None) or ()
    if any(kind != "full_attention" for kind in layer_types):
        raise ValueError(f"Attention Buckets needs full attention in every layer; this {model_type} config has "
                         f"layer_types {sorted(set(layer_types))}")
    rope_type = rope_spec_from_config(config).rope_type  # raises for RoPE types buckets cannot compute at all
    if rope_type not in BUCKET_ROPE_TYPES[model_type]:
        raise ValueError(f"Attention Buckets is not verified for {model_type} with rope_type {rope_type!r}; "
                         f"verified for {model_type}: {', '.join(BUCKET_ROPE_TYPES[model_type])}")


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


def encode_prompt(tokenizer, prompt: str | Sequence[int], *, add_special_tokens: bool = True) -> list[int]:
    """Token ids of a prompt: text is tokenized, a list of ids is taken as is; empty prompts are refused.
    Every engine encodes through this, so the same prompt reaches each engine as the same tokens."""
    tokens = tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"] if isinstance(prompt, str) else prompt
    ids = [int(t) for t in tokens]
    if not ids:
        raise ValueError("cannot generate from an empty prompt (it has no tokens)")
    return ids


@dataclass
class Context:
    """One prompt while it decodes: what the generator made of its settings and what it has produced."""

    prompt_ids: list[int]
    key: Hashable | None  # its name in the prefix cache (None: not cached)
    params: DecodeParams
    handle: object  # the caller's name for this prompt, handed back with its result
    sampler: Sampler
    matcher: GrammarMatcher | None = None  # where the completion stands in `params.grammar`
    lookup: NgramIndex | None = None  # prompt + generated tokens, for prompt-lookup drafts (greedy only)
    cached_len: int = 0
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    text: str | None = None
    checked_chars: int = 0  # how much of the text the stop strings were already looked for in
    weights: list[list[float]] = field(default_factory=list)
    logits: list[Tensor] = field(default_factory=list)


class BucketedGenerator:
    """Generate with Attention Buckets on a transformers model: one batched forward for B x N rows.

    `bases=None` decodes like plain `model.generate` with the model's own rotary module (any
    causal LM; batching, stop strings and the prefix cache still apply); the model's own base
    alone goes through the per-row RoPE path and gives the same tokens.
    Steps are serialised by a lock: the model's rotary module is swapped for each step.
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
        sources = (getattr(model, "generation_config", None), model.config, tokenizer)
        eos = [value for value in (getattr(source, "eos_token_id", None) for source in sources) if value is not None]
        self.eos_ids: set[int] = {t for value in eos for t in ([value] if isinstance(value, int) else value)}
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad if pad is not None else min(self.eos_ids, default=0))

    @property
    def n(self) -> int:
        return len(self.bases)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @contextlib.contextmanager
    def serving(self):
        """What every step holds: the lock, inference mode, copy-free GQA attention and per-row RoPE in place of
        the model's rotary module (its tables built once per dtype and device)."""
        with self._lock, torch.inference_mode(), gqa_attention(self.model):
            if self.plain:
                yield
                return
            dtype, decoder = next(self.model.parameters()).dtype, self.model.get_decoder()
            if self._rotary is None or self._rotary.dtype != dtype or self._rotary.device != self.device:
                spec = rope_spec_from_config(self.model.config)
                self._rotary = PerRowRotary(self.bases, spec, dtype=dtype, device=self.device)
            original, decoder.rotary_emb = decoder.rotary_emb, self._rotary
            try:
                yield
            finally:
                decoder.rotary_emb = original

    def encode(self, prompt: str | Sequence[int]) -> list[int]:
        """Token ids of a prompt (text is tokenized; a list of ids is taken as is)."""
        return encode_prompt(self.tokenizer, prompt, add_special_tokens=self.add_special_tokens)

    def decode(self, token_ids: list[int]) -> str:
        """The text of generated tokens, EOS left out."""
        ids = [t for t in token_ids if t not in self.eos_ids]
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def grammar_matcher(self, grammar: str) -> GrammarMatcher:
        """A fresh matcher for `grammar` (GrammarError if it does not compile); the tokenizer's token trie is
        built on first use."""
        if self._grammar_tokenizer is None:
            self._grammar_tokenizer = GrammarTokenizer(self.tokenizer, int(self.model.config.vocab_size), self.eos_ids)
        return self._grammar_tokenizer.matcher(grammar)

    def clear_prefix_cache(self) -> None:
        self.prefix_cache.clear()

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
            per_prompt = [shared if shared.seed is None else replace(shared, seed=row_seed(shared.seed, i))
                          for i in range(len(prompts))]
        else:
            per_prompt = list(params)
            if len(per_prompt) != len(prompts):
                raise ValueError(f"got {len(per_prompt)} DecodeParams for {len(prompts)} prompts")
        keys = list(cache_keys) if cache_keys is not None else [None] * len(prompts)
        if len(keys) != len(prompts):
            raise ValueError(f"got {len(keys)} cache keys for {len(prompts)} prompts")
        encoded = [self.encode(prompt) for prompt in prompts]  # a bad prompt fails before any work
        decoder = self.continuous(return_weights=return_weights, return_bucket_logits=return_bucket_logits,
                                  reserve_contexts=len(prompts))
        results = dict(decoder.step(list(zip(encoded, per_prompt, keys, range(len(prompts))))))
        while decoder.active:
            results.update(decoder.step())
        return [results[index] for index in range(len(prompts))]

    def continuous(self, *, return_weights: bool = False, return_bucket_logits: bool = False,
                   reserve_contexts: int = 0) -> ContinuousDecoder:
        """A `ContinuousDecoder` on this generator (prompts join and leave between decode steps); see its
        `reserve_contexts`."""
        return ContinuousDecoder(self, return_weights=return_weights, return_bucket_logits=return_bucket_logits,
                                 reserve_contexts=reserve_contexts)

    # -- what the decoder asks of the generator --------------------------------------------------

    def new_context(self, prompt_ids: list[int], key: Hashable | None, params: DecodeParams,
                    handle: object = None) -> Context:
        """Book-keeping for one prompt: its own sampler when seeded; finished at once for max_new_tokens=0."""
        sampler = Sampler.seeded(params.temperature, params.top_p, params.seed, self.device)
        ctx = Context(prompt_ids, key, params, handle, sampler)
        if params.grammar is not None:
            ctx.matcher = self.grammar_matcher(params.grammar)
        if params.max_new_tokens == 0:
            ctx.finish_reason, ctx.text = "length", ""
        elif self.prompt_lookup and sampler.greedy and ctx.matcher is None:
            # Drafts are verified against unmasked greedy tokens, so a constrained prompt decodes without them.
            ctx.lookup = NgramIndex(prompt_ids)
        return ctx

    def prefill_group_size(self, count: int) -> int:
        """How many of `count` new contexts share one prefill forward.

        On CPU each context is prefilled alone: a padded batch needs an explicit attention mask, which keeps
        SDPA off its causal kernel (measured 1.6-1.8x slower attention for 2 x 1,200 tokens), and a single
        1k-token prompt already fills the matrix units. On GPUs batching amortises launches, so all go together.
        """
        if self.prefill_batch is not None:
            return max(1, int(self.prefill_batch))
        return 1 if self.device.type == "cpu" else max(1, count)

    def forward(self, input_ids: Tensor, mask: Tensor, positions: Tensor, cache, keep: int = 1) -> Tensor:
        """One forward for all contexts x buckets; returns the last `keep` columns' logits `[contexts*N, keep, V]`."""
        n = self.n
        if not self.plain:
            self._rotary.set_rows(torch.arange(n, device=self.device).repeat(input_ids.shape[0]))
        out = self.model(input_ids=input_ids.repeat_interleave(n, dim=0), attention_mask=mask.repeat_interleave(n, dim=0),
                         position_ids=positions.repeat_interleave(n, dim=0), past_key_values=cache, use_cache=True,
                         logits_to_keep=keep)
        # The LM head may sit on another device than the embeddings (device_map); fusion, grammar masks and
        # samplers live on the generator's device.
        return out.logits[:, -keep:, :].to(self.device).reshape(input_ids.shape[0] * n, keep, -1)

    def draft(self, ctx: Context) -> list[int]:
        """Prompt-lookup draft for a greedy context, never longer than its remaining token budget allows."""
        if ctx.lookup is None:
            return []
        room = ctx.params.max_new_tokens - len(ctx.generated) - 1  # the step emits up to len(draft) + 1 tokens
        return ctx.lookup.propose(min(self.prompt_lookup, room))

    def advance(self, ctx: Context, token: int) -> None:
        """Append a chosen token and decide whether the context is finished."""
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
            text = self.decode(ctx.generated)
            longest = max(len(s) for s in params.stop)
            start = max(0, ctx.checked_chars - longest)
            hits = [i for i in (text.find(s, start) for s in params.stop) if i >= 0]
            ctx.checked_chars = len(text)
            if hits:
                ctx.text, ctx.finish_reason = text[: min(hits)], "stop"
                return
        if len(ctx.generated) >= params.max_new_tokens:
            ctx.finish_reason = "length"

    def result(self, ctx: Context, keep_weights: bool, keep_logits: bool) -> GenerationResult:
        return GenerationResult(
            text=ctx.text if ctx.text is not None else self.decode(ctx.generated), token_ids=list(ctx.generated),
            prompt_tokens=len(ctx.prompt_ids), cached_tokens=ctx.cached_len, finish_reason=ctx.finish_reason or "length",
            bucket_weights=ctx.weights if keep_weights else None,
            bucket_logits=torch.stack(ctx.logits) if keep_logits and ctx.logits else None)


class ContinuousDecoder:
    """The decode loop: prompts join and leave between decode steps (iteration-level scheduling).

    Every `step(...)` first admits the prompts it is given (prefill, first token, merge under the contexts in
    flight), then runs one decode step for everything in flight (feed tokens and drafts, fuse, choose, accept,
    retire, compact), and returns the prompts that just finished. A prompt gets what a `generate` call of its
    own gives, up to float rounding of a different batch composition.

    Example::

        decoder = generator.continuous()
        finished = decoder.step([(prompt_ids, DecodeParams(max_new_tokens=8), "traj-1", "my-handle")])
        while decoder.active:
            finished += decoder.step()          # [(handle, GenerationResult), ...] as prompts end
    """

    def __init__(self, generator: BucketedGenerator, *, return_weights: bool = False,
                 return_bucket_logits: bool = False, reserve_contexts: int = 0) -> None:
        self.generator = generator
        self.return_weights = return_weights
        self.return_bucket_logits = return_bucket_logits
        # On CPU a batch's KV buffers get rows for this many contexts from the start: untouched rows cost no
        # memory there, and contexts joining later are copied into them instead of regrowing the whole batch.
        self.reserve_contexts = max(0, int(reserve_contexts))
        self._batch: Batch | None = None
        self._lost: list[object] = []

    @property
    def active(self) -> int:
        """Prompts in flight."""
        return 0 if self._batch is None else len(self._batch.contexts)

    def span(self, prompt_tokens: int, params: DecodeParams) -> int:
        """The most KV columns a prompt can reach: its tokens, its new tokens and one step's drafts."""
        return prompt_tokens + params.max_new_tokens + self.generator.prompt_lookup

    def spans(self) -> list[int]:
        """`span` of each prompt in flight (`buckets.memory_budget` sizes batches with them)."""
        contexts = [] if self._batch is None else self._batch.contexts
        return [self.span(len(ctx.prompt_ids), ctx.params) for ctx in contexts]

    def handles(self) -> list[object]:
        """The handles of the prompts in flight."""
        return [] if self._batch is None else [ctx.handle for ctx in self._batch.contexts]

    def abandon(self) -> list[object]:
        """Drop everything in flight; returns their handles and those lost to an error (to fail them)."""
        handles = self._lost + self.handles()
        self._batch, self._lost = None, []
        return handles

    def step(self, admit: Sequence[tuple[Sequence[int], DecodeParams, Hashable | None, object]] = ()
             ) -> list[tuple[object, GenerationResult]]:
        """Admit `(prompt_ids, params, cache_key, handle)` tuples, decode one token for every prompt in flight
        and return `(handle, result)` for the prompts that finished. After an exception the decoder is empty:
        the prompts that were in flight are lost and `abandon()` returns their handles (the ones passed to the
        failed call are the caller's to fail)."""
        gen = self.generator
        newcomers, done = [], []
        for ids, params, key, handle in admit:
            ctx = gen.new_context(list(ids), key, params, handle)
            (done if ctx.finish_reason is not None else newcomers).append(ctx)
        in_flight = self.handles()
        try:
            with gen.serving():
                if newcomers:
                    done += self._admit(newcomers)
                if self._batch is not None:
                    done += self._decode_step()
        except BaseException:
            self._lost += in_flight  # the batch may be half-updated: drop it all
            self._batch = None
            raise
        return [(ctx.handle, gen.result(ctx, self.return_weights, self.return_bucket_logits)) for ctx in done]

    def _admit(self, newcomers: list[Context]) -> list[Context]:
        """Prefill `newcomers` (in groups), choose their first token and merge the unfinished ones into the batch
        in flight; returns those that finished."""
        gen, finished = self.generator, []
        group = gen.prefill_group_size(len(newcomers))
        for start in range(0, len(newcomers), group):
            chunk = newcomers[start : start + group]
            prefixes, continues_own = [], []
            for ctx in chunk:
                entry, ctx.cached_len = gen.prefix_cache.lookup(ctx.key, ctx.prompt_ids)
                prefixes.append((ctx.cached_len, entry.kv if entry is not None else None))
                continues_own.append(gen.prefix_cache.holds(ctx.key, entry))
            suffixes = [ctx.prompt_ids[ctx.cached_len :] for ctx in chunk]
            # Newcomers prefill straight into the batch's spare rows where it has them, so merging copies nothing.
            # Else into a cache of their own, where decode steps append in place (no per-step cat); only the cache
            # that becomes the batch reserves rows.
            width = prefill_width(prefixes, suffixes)
            cache = None if self._batch is None else in_spare_rows(self._batch.cache, len(chunk) * gen.n, width)
            if cache is None:
                becomes_batch = self._batch is None and start == 0 and gen.device.type == "cpu"
                reserve_rows = self.reserve_contexts * gen.n if becomes_batch else 0
                cache = growing_dynamic_cache(gen.model.config, reserve_rows)
            mask, positions, input_ids = prefill_inputs(cache, prefixes, suffixes, gen.n, gen.pad_id, gen.device)
            fresh = Batch(chunk, cache, mask, positions[:, -1])
            logits = gen.forward(input_ids, mask, positions, cache)
            for row in range(len(chunk)):  # later newcomers may borrow this prompt's opening at once ...
                if not continues_own[row]:  # ... unless the context's own entry (its previous call) offers it
                    self._remember(fresh, row)
            self._emit(fresh, logits, [[] for _ in chunk])
            fresh, done = self._retire(fresh)
            finished += done
            if fresh is not None:
                self._batch = fresh if self._batch is None else merge(self._batch, fresh)
        return finished

    def _decode_step(self) -> list[Context]:
        """Feed every context its last chosen token and its prompt-lookup draft, if any, and take the next
        token(s); returns the contexts that finished."""
        gen, batch = self.generator, self._batch
        drafts = [gen.draft(ctx) for ctx in batch.contexts]
        gen.stats.decode_steps += 1
        gen.stats.drafted_tokens += sum(map(len, drafts))
        fed = [[ctx.generated[-1], *draft] for ctx, draft in zip(batch.contexts, drafts)]
        input_ids, positions = feed(batch, fed, gen.pad_id)
        columns = input_ids.shape[1]
        logits = gen.forward(input_ids, batch.mask, positions, batch.cache, keep=columns)
        keep_fed(batch, self._emit(batch, logits, drafts), columns)
        self._batch, finished = self._retire(batch)
        return finished

    def _emit(self, batch: Batch, logits: Tensor, drafts: list[list[int]]) -> list[int]:
        """Fuse the buckets' logits `[contexts*N, columns, V]` and append each context's next token(s): with a
        draft, its prefix that greedy decoding confirms plus the model's own next token. Returns how many of
        its fed columns each context keeps (a finished context keeps none past its last token)."""
        gen, contexts = self.generator, batch.contexts
        columns = logits.shape[1]
        per_bucket = logits.view(len(contexts), gen.n, columns, logits.shape[-1]).transpose(1, 2)
        # Unnormalised: choosing a token is shift-invariant, so the log_softmax pass over [contexts, V] is skipped.
        fused, weights = fuse(per_bucket, gen.fusion, normalize=False)  # [contexts, columns, V], [.., N]
        # Constrained contexts never have drafts, so their token always comes from column 0.
        first = choose_tokens(mask_logits(fused[:, 0], [ctx.matcher for ctx in contexts]),
                              [ctx.sampler for ctx in contexts]).tolist()
        greedy = fused.argmax(dim=-1).tolist() if columns > 1 else None
        kept = []
        for row, (ctx, draft) in enumerate(zip(contexts, drafts)):
            emitted = accepted_tokens(draft, greedy[row]) if draft else [first[row]]
            gen.stats.accepted_tokens += len(emitted) - 1
            for column, token in enumerate(emitted):
                if self.return_weights:
                    ctx.weights.append(weights[row, column].tolist())
                if self.return_bucket_logits:
                    ctx.logits.append(per_bucket[row, column].float().cpu().clone())
                gen.advance(ctx, token)
                if ctx.finish_reason is not None:
                    emitted = emitted[: column + 1]
                    break
            kept.append(len(emitted))
        return kept

    def _retire(self, batch: Batch) -> tuple[Batch | None, list[Context]]:
        """Finished contexts leave the batch, their KV going to the prefix cache. Returns `(the batch, None when
        nobody is left; the finished contexts)`."""
        gen, contexts = self.generator, batch.contexts
        finished = [row for row, ctx in enumerate(contexts) if ctx.finish_reason is not None]
        for row in finished:
            self._remember(batch, row)
        survivors = [row for row, ctx in enumerate(contexts) if ctx.finish_reason is None]
        if finished and survivors:
            batch = select(batch, survivors, gen.n)
        return (batch if survivors else None), [contexts[row] for row in finished]

    def _remember(self, batch: Batch, row: int) -> None:
        """Copy a context's KV (real tokens only) into the prefix cache under its key: right after its prefill
        (so others can borrow the prompt's opening; not when it continues its own entry, whose opening is the
        same) and again when it finishes (for its own next call)."""
        ctx = batch.contexts[row]
        if ctx.key is None:
            return
        fed_ids = ctx.prompt_ids + ctx.generated[:-1]  # the last chosen token never went through the model
        kv = context_kv(batch, row, self.generator.n)
        if kv[0][0].shape[2] != len(fed_ids):  # a book-keeping bug would silently poison later calls
            raise RuntimeError(f"prefix cache: {kv[0][0].shape[2]} KV columns for {len(fed_ids)} tokens")
        self.generator.prefix_cache.store(ctx.key, fed_ids, kv)

"""Grammar-constrained decoding for the bucketed generator, on llguidance.

A prompt decoded with `DecodeParams(grammar=...)` gets its own matcher; before each of its tokens is
chosen, the tokens that would leave the grammar are masked out of the (fused) logits, and the chosen
token advances the matcher. Masking happens after fusion, so with Attention Buckets the buckets still
vote over the whole vocabulary and the grammar only removes impossible choices. Once the grammar is
complete only end-of-sequence is allowed, which ends the prompt.

The grammar is llguidance's Lark dialect (`reasoning.action_grammar` writes the ReAct one). Building
the token trie for a tokenizer takes about a second, so a `GrammarTokenizer` is made once per generator.
Compiling a grammar against it takes about 5 ms (the ReAct grammar of five functions), copying a compiled
one microseconds; a trajectory asks for the same grammar at every step, so compiled grammars are kept
(the most recently used `COMPILED_GRAMMARS`) and each prompt gets a copy.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

COMPILED_GRAMMARS = 256  # about one per trajectory in flight, with room to spare


class GrammarError(ValueError):
    """A grammar that does not compile, or text the model could not continue inside the grammar."""


class GrammarTokenizer:
    """llguidance's view of a transformers (fast) tokenizer, `vocab_size` wide (the logits' width)."""

    def __init__(self, tokenizer, vocab_size: int, eos_ids: Iterable[int]) -> None:
        try:
            import llguidance.hf
        except ImportError as error:  # pragma: no cover - llguidance is a base dependency
            raise GrammarError("constrained decoding needs llguidance (pip install 'llguidance>=1.7,<1.8')") from error
        eos = sorted(int(i) for i in eos_ids if int(i) < vocab_size)
        if not eos:
            raise GrammarError("constrained decoding needs an end-of-sequence token to end a completed grammar")
        try:
            self.ll_tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=eos)
        except ValueError as error:
            raise GrammarError(f"constrained decoding needs a fast (Rust) tokenizer: {error}") from error
        self.vocab_size = vocab_size
        self._compiled: OrderedDict[str, object] = OrderedDict()  # grammar -> matcher that has consumed nothing
        self._lock = threading.Lock()  # the engine checks grammars on the event loop, decoding uses them elsewhere

    def matcher(self, grammar: str) -> GrammarMatcher:
        """A fresh matcher for `grammar`; GrammarError if it does not compile."""
        import llguidance

        with self._lock:
            compiled = self._compiled.get(grammar)
            if compiled is None:
                compiled = llguidance.LLMatcher(self.ll_tokenizer, llguidance.LLMatcher.grammar_from_lark(grammar),
                                                log_level=0)
                if compiled.is_error():
                    raise GrammarError(f"the grammar does not compile: {compiled.get_error()}")
                self._compiled[grammar] = compiled
                if len(self._compiled) > COMPILED_GRAMMARS:
                    self._compiled.popitem(last=False)
            else:
                self._compiled.move_to_end(grammar)
            return GrammarMatcher(compiled.deep_copy())


class GrammarMatcher:
    """Where one prompt's completion stands in its grammar (made by `GrammarTokenizer.matcher`)."""

    def __init__(self, matcher) -> None:
        self._matcher = matcher  # an llguidance.LLMatcher of its own

    def fill_mask(self, bitmask: Tensor, row: int) -> None:
        """Write the allowed next tokens into row `row` of an int32 bitmask (`allocate_bitmask`)."""
        import llguidance.torch

        llguidance.torch.fill_next_token_bitmask(self._matcher, bitmask, row)

    def advance(self, token: int) -> None:
        """Take the chosen token; a token the mask did not allow is a bug, reported as GrammarError."""
        if not self._matcher.consume_token(int(token)):
            raise GrammarError(f"token {token} leaves the grammar: {self._matcher.get_error()}")


def allocate_bitmask(rows: int, vocab_size: int) -> Tensor:
    """An int32 bitmask of `rows` rows covering `vocab_size` tokens (32 per word), all allowed."""
    return torch.full((rows, (vocab_size + 31) // 32), -1, dtype=torch.int32)


def unpack_bitmask(bitmask: Tensor, vocab_size: int) -> Tensor:
    """The boolean `[rows, vocab_size]` allowed-token matrix of a bitmask (bit j of word w is token 32w + j).

    >>> unpack_bitmask(torch.tensor([[0b101]], dtype=torch.int32), 4).tolist()
    [[True, False, True, False]]
    """
    shifts = torch.arange(32, dtype=torch.int32, device=bitmask.device)
    bits = (bitmask.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(bitmask.shape[0], -1)[:, :vocab_size].bool()


def mask_logits(logits: Tensor, matchers: Sequence[GrammarMatcher | None]) -> Tensor:
    """`logits` `[rows, V]` with every token outside row i's grammar set to -inf (rows without a matcher
    are untouched). Returns the same tensor, changed in place."""
    rows = [row for row, matcher in enumerate(matchers) if matcher is not None]
    if not rows:
        return logits
    bitmask = allocate_bitmask(len(rows), logits.shape[-1])
    for slot, row in enumerate(rows):
        matchers[row].fill_mask(bitmask, slot)
    allowed = unpack_bitmask(bitmask.to(logits.device), logits.shape[-1])
    index = torch.tensor(rows, device=logits.device)
    selected = logits.index_select(0, index).masked_fill(~allowed, float("-inf"))
    logits.index_copy_(0, index, selected)
    return logits

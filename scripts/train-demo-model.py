#!/usr/bin/python3
"""
Trains the demo model that ships with bitnet-gen: a tiny BitNet b1.58 (the 2B4T family: ternary
BitLinear layers trained with quantization-aware training, RMSNorm with attn/ffn sub-norms, relu²
gate, rotate-half RoPE, GQA, tied embedding) on the King James Bible, with its own byte-level BPE.

    apt-get install -y python3-torch bible-kjv libopenblas0-pthread  # bible-kjv pulls in bible-kjv-text
    /usr/bin/python3 scripts/train-demo-model.py    # about 18 minutes on one core (docs/demo-model.md)

Writes, from one seed and a fixed data order:
  assets/demo-model/                 HF folder in microsoft/bitnet-b1.58-2B-4T's layout (packed U8
                                     ternary weights + weight_scale, autobitlinear), tokenizer files
  tests/fixtures/demo-heldout.txt    the held-out text (the last verses of Revelation)
  tests/fixtures/demo-model-eval.json  this script's perplexity of the exported model over it,
                                     computed as bitnet-gen's `perplexity` command computes it

PyTorch is a developer tool here, not a dependency of the package: only this script needs it.
"""
import argparse
import hashlib
import json
import math
import os
import random
import re
import struct
import subprocess
import time

# One core: torch.set_num_threads does not reach an OpenBLAS that torch links through libblas.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
import torch  # noqa: E402  (after the thread setting)
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------------------------------------
# Data: the King James Bible from Debian's bible-kjv (public domain), one verse per line.
# ---------------------------------------------------------------------------------------------

VERSE_REFERENCE = re.compile(r'^[1-3]?[A-Za-z]+\d+:\d+ ')


def read_verses():
    """Every verse of the KJV, in canonical order, without its reference ("Ge1:1 ")."""
    # -f turns pretty-printing off: one "Ge1:1 text" line per verse.
    dump = subprocess.run(['bible', '-f', 'Gen1:1-Rev22:21'], check=True, capture_output=True,
                          stdin=subprocess.DEVNULL, text=True, encoding='ascii').stdout
    verses = []
    for line in dump.splitlines():
        match = VERSE_REFERENCE.match(line)
        if not match:
            raise SystemExit(f'unexpected line from bible: {line[:80]!r}')
        verses.append(line[match.end():].strip())
    return verses


def check_plain_ascii(text):
    # The Python pre-tokenizer below equals the Llama-3 regex only on this alphabet.
    bad = sorted({c for c in text if not (c == '\n' or ' ' <= c <= '~')})
    if bad:
        raise SystemExit(f'text holds characters outside printable ASCII: {bad[:10]}')


# ---------------------------------------------------------------------------------------------
# Tokenizer: byte-level BPE with the Llama-3 split, encoded exactly as src/tokenizer does it.
# ---------------------------------------------------------------------------------------------

# The Llama-3 pattern (src/tokenizer/pretokenize.ts) with \p{L} = [A-Za-z], \p{N} = [0-9] and
# \s = ASCII whitespace: identical to it on printable ASCII plus newlines (check_plain_ascii).
LLAMA3_SPLIT_ASCII = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+", re.ASCII)
# The same pattern as HF tokenizer.json files spell it (LLAMA3_HF_PATTERN in pretokenize.ts).
LLAMA3_HF_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                     r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

BOS, EOS, EOT = '<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>'
SPECIAL_TOKENS = [BOS, EOS, EOT]
# 2B4T's chat template (reference 5.6) with the BOS it leaves implicit.
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ message['role'] | capitalize + ': ' + "
                 "message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}")


def bytes_to_unicode():
    """GPT-2's byte -> printable character map, in the order that gives byte tokens their ids."""
    printable = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    order = printable[:]
    chars = printable[:]
    for b in range(256):
        if b not in printable:
            order.append(b)
            chars.append(256 + len(order) - len(printable) - 1)
    return order, {b: chr(c) for b, c in zip(order, chars)}


BYTE_ORDER, BYTE_CHAR = bytes_to_unicode()


def token_string(token):
    return ''.join(BYTE_CHAR[b] for b in token)


def train_bpe(texts, ordinary_tokens):
    """
    Learns merges over the pre-tokenized pieces of `texts` until there are `ordinary_tokens`
    tokens (256 bytes included): each step merges the most frequent adjacent pair (ties: the
    smallest pair of byte strings). Returns the tokens in id order and the merges in rank order.
    """
    counts = {}
    for text in texts:
        for piece in LLAMA3_SPLIT_ASCII.findall(text):
            counts[piece] = counts.get(piece, 0) + 1
    words = [[bytes([b]) for b in piece.encode('ascii')] for piece in counts]
    frequency = list(counts.values())
    pair_count = {}
    pair_words = {}
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_count[pair] = pair_count.get(pair, 0) + frequency[i]
            pair_words.setdefault(pair, set()).add(i)
    tokens = [bytes([b]) for b in BYTE_ORDER]
    known = set(tokens)
    merges = []
    while len(tokens) < ordinary_tokens and pair_count:
        best_count = max(pair_count.values())
        if best_count < 2:
            break
        best = min(pair for pair, count in pair_count.items() if count == best_count)
        merged = best[0] + best[1]
        merges.append(best)
        if merged not in known:
            known.add(merged)
            tokens.append(merged)
        for i in sorted(pair_words.pop(best)):
            word = words[i]
            for pair in zip(word, word[1:]):
                pair_count[pair] -= frequency[i]
                if pair_count[pair] == 0:
                    del pair_count[pair]
            out = []
            j = 0
            while j < len(word):
                if j + 1 < len(word) and (word[j], word[j + 1]) == best:
                    out.append(merged)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            words[i] = out
            for pair in zip(out, out[1:]):
                pair_count[pair] = pair_count.get(pair, 0) + frequency[i]
                pair_words.setdefault(pair, set()).add(i)
        pair_count.pop(best, None)
    return tokens, merges


class Tokenizer:
    """src/tokenizer's algorithm: Llama-3 split, `ignore_merges`, lowest-rank merge first (leftmost on ties)."""

    def __init__(self, tokens, merges):
        self.tokens = tokens
        self.merges = merges
        self.id_of = {token: i for i, token in enumerate(tokens)}
        self.rank = {}
        for rank, pair in enumerate(merges):
            self.rank.setdefault(pair, rank)
        self.special = {name: len(tokens) + i for i, name in enumerate(SPECIAL_TOKENS)}
        self.vocab_size = len(tokens) + len(SPECIAL_TOKENS)
        self.cache = {}

    def encode_piece(self, piece):
        ids = self.cache.get(piece)
        if ids is not None:
            return ids
        data = piece.encode('ascii')
        if data in self.id_of:  # single bytes, and whole pieces under ignore_merges
            ids = [self.id_of[data]]
        else:
            symbols = [bytes([b]) for b in data]
            while True:
                best = None
                for j in range(len(symbols) - 1):
                    rank = self.rank.get((symbols[j], symbols[j + 1]))
                    if rank is not None and (best is None or rank < best[0]):
                        best = (rank, j)
                if best is None:
                    break
                j = best[1]
                symbols[j:j + 2] = [symbols[j] + symbols[j + 1]]
            ids = [self.id_of[s] for s in symbols]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        """Ordinary text to ids, without BOS (Tokenizer.encode(text, { addBos: false }))."""
        ids = []
        for piece in LLAMA3_SPLIT_ASCII.findall(text):
            ids.extend(self.encode_piece(piece))
        return ids

    def decode(self, ids):
        names = {i: name for name, i in self.special.items()}
        return ''.join(names[i] if i in names else self.tokens[i].decode('ascii') for i in ids)

    def tokenizer_json(self):
        vocab = {token_string(token): i for i, token in enumerate(self.tokens)}
        added = [{'id': i, 'content': name, 'single_word': False, 'lstrip': False, 'rstrip': False,
                  'normalized': False, 'special': True} for name, i in self.special.items()]
        # The shape of llama3TokenizerJson in src/tokenizer/hf-json.ts.
        return {
            'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added, 'normalizer': None,
            'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
                {'type': 'Split', 'pattern': {'Regex': LLAMA3_HF_PATTERN}, 'behavior': 'Isolated', 'invert': False},
                {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}]},
            'post_processor': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': False, 'use_regex': True},
            'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
            'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
                      'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': True,
                      'vocab': vocab, 'merges': [[token_string(a), token_string(b)] for a, b in self.merges]},
        }


# ---------------------------------------------------------------------------------------------
# Model: BitNet b1.58 with quantization-aware training (reference 1.3, 2.1-2.3).
# ---------------------------------------------------------------------------------------------

def ternarize(w):
    """Absmean ternarization: (values in {-1, 0, 1}, β) with β = max(mean|W|, 1e-5)."""
    beta = w.abs().mean().clamp(min=1e-5)
    return (w * (1 / beta)).round().clamp(-1, 1), beta


def quantize_activations(x):
    """Per-token absmax int8: (q, s) with q = clamp(round(x·s), -128, 127), s = 127 / max|x|."""
    s = 127 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127), s


class BitLinear(nn.Linear):
    """Trains full-precision master weights through the quantized forward (straight-through gradients)."""

    def __init__(self, inputs, outputs):
        super().__init__(inputs, outputs, bias=False)
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        values, beta = ternarize(self.weight)
        w = self.weight + (values * beta - self.weight).detach()
        q, s = quantize_activations(x)
        x = x + (q / s - x).detach()
        return F.linear(x, w)


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, positions, theta):
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.arange(positions, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """Rotate-half RoPE on [B, heads, T, D]: feature j pairs with j + D/2."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, hd = c['hidden_size'], c['hidden_size'] // c['num_attention_heads']
        eps = c['rms_norm_eps']
        self.input_layernorm = RMSNorm(d, eps)
        self.q_proj = BitLinear(d, c['num_attention_heads'] * hd)
        self.k_proj = BitLinear(d, c['num_key_value_heads'] * hd)
        self.v_proj = BitLinear(d, c['num_key_value_heads'] * hd)
        self.attn_sub_norm = RMSNorm(d, eps)
        self.o_proj = BitLinear(d, d)
        self.post_attention_layernorm = RMSNorm(d, eps)
        self.gate_proj = BitLinear(d, c['intermediate_size'])
        self.up_proj = BitLinear(d, c['intermediate_size'])
        self.ffn_sub_norm = RMSNorm(c['intermediate_size'], eps)
        self.down_proj = BitLinear(c['intermediate_size'], d)


def attention(q, k, v, cos, sin, round_kv):
    """Causal GQA attention on [B, T, H*D] inputs; `round_kv` stores K/V as f16 like the engine's cache."""
    B, T, _ = q.shape
    hd = cos.shape[-1] * 2
    q = apply_rope(q.view(B, T, -1, hd).transpose(1, 2), cos[:T], sin[:T])
    k = apply_rope(k.view(B, T, -1, hd).transpose(1, 2), cos[:T], sin[:T])
    v = v.view(B, T, -1, hd).transpose(1, 2)
    if round_kv:
        k, v = k.half().float(), v.half().float()
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    out = scores.masked_fill(mask, float('-inf')).softmax(-1) @ v
    return out.transpose(1, 2).reshape(B, T, -1)


class BitNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
        nn.init.normal_(self.embed_tokens.weight, std=0.02)
        self.layers = nn.ModuleList(Block(c) for _ in range(c['num_hidden_layers']))
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        cos, sin = rope_tables(c['hidden_size'] // c['num_attention_heads'], c['max_position_embeddings'], c['rope_theta'])
        self.register_buffer('cos', cos, persistent=False)
        self.register_buffer('sin', sin, persistent=False)

    def forward(self, ids):
        """Training forward: logits [B, T, vocab] (LM head = the embedding, tied)."""
        h = self.embed_tokens(ids)
        for l in self.layers:
            a = l.input_layernorm(h)
            out = attention(l.q_proj(a), l.k_proj(a), l.v_proj(a), self.cos, self.sin, round_kv=False)
            h = h + l.o_proj(l.attn_sub_norm(out))
            b = l.post_attention_layernorm(h)
            h = h + l.down_proj(l.ffn_sub_norm(F.relu(l.gate_proj(b)).square() * l.up_proj(b)))
        return self.norm(h) @ self.embed_tokens.weight.T


class ExportedBitNet:
    """
    The model as the engine runs it, from the exported numbers: ternary matrices with their β
    (int8 activations, integer accumulation), f16 embedding / LM head, f32 norms, f16 K/V.
    """

    def __init__(self, model):
        self.model = model
        self.embedding = model.embed_tokens.weight.detach().half().float()
        self.ternary = {}
        for l in model.layers:
            for proj in PROJECTIONS:
                values, beta = ternarize(getattr(l, proj).weight.detach())
                self.ternary[(l, proj)] = (values, beta.item())

    def linear(self, layer, proj, x):
        values, beta = self.ternary[(layer, proj)]
        q, s = quantize_activations(x)
        # Exact: |sums| < 2^24, so f32 holds the integer dot products exactly.
        return (q @ values.T) / s * torch.tensor(beta, dtype=torch.float32)

    @torch.no_grad()
    def logits(self, ids):
        m = self.model
        h = self.embedding[ids]
        for l in m.layers:
            a = l.input_layernorm(h)
            out = attention(self.linear(l, 'q_proj', a), self.linear(l, 'k_proj', a), self.linear(l, 'v_proj', a),
                            m.cos, m.sin, round_kv=True)
            h = h + self.linear(l, 'o_proj', l.attn_sub_norm(out))
            b = l.post_attention_layernorm(h)
            f = F.relu(self.linear(l, 'gate_proj', b)).square() * self.linear(l, 'up_proj', b)
            h = h + self.linear(l, 'down_proj', l.ffn_sub_norm(f))
        return m.norm(h) @ self.embedding.T


PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']
HF_PREFIX = {'q_proj': 'self_attn', 'k_proj': 'self_attn', 'v_proj': 'self_attn', 'o_proj': 'self_attn',
             'gate_proj': 'mlp', 'up_proj': 'mlp', 'down_proj': 'mlp'}


def perplexity(exported, tokens, ctx, bos):
    """
    src/cli/perplexity.ts: windows of `ctx` tokens, the first replaced by BOS, one forward each;
    the tokens after positions ctx/2 .. ctx-2 are scored.
    """
    chunks = len(tokens) // ctx
    nll, count = 0.0, 0
    for c in range(chunks):
        window = list(tokens[c * ctx:(c + 1) * ctx])
        window[0] = bos
        logits = exported.logits(torch.tensor([window]))[0].double()
        logp = logits.log_softmax(-1)
        for j in range(ctx // 2, ctx - 1):
            nll -= logp[j, window[j + 1]].item()
            count += 1
    return math.exp(nll / count), count, chunks


# ---------------------------------------------------------------------------------------------
# Export: HF safetensors as microsoft/bitnet-b1.58-2B-4T stores them (reference 3a).
# ---------------------------------------------------------------------------------------------

def pack_ternary(values):
    """HF pack_weights: byte [p, c] holds rows p, p+P, p+2P, p+3P (P = rows/4) as codes value+1."""
    codes = (values + 1).to(torch.uint8)
    p = codes.shape[0] // 4
    return codes[:p] | (codes[p:2 * p] << 2) | (codes[2 * p:3 * p] << 4) | (codes[3 * p:] << 6)


def unpack_ternary(packed):
    return torch.cat([((packed >> (2 * plane)) & 3).to(torch.int8) - 1 for plane in range(4)])


def write_safetensors(path, tensors):
    """tensors: name -> (dtype name, tensor); written in the given order."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, t) in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header['__metadata__'] = {'format': 'pt'}
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text)
        for blob in blobs:
            f.write(blob)


def export(model, exported, tokenizer, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    c = model.c
    tensors = {'model.embed_tokens.weight': ('F16', model.embed_tokens.weight.detach().half())}
    for i, l in enumerate(model.layers):
        prefix = f'model.layers.{i}.'
        tensors[prefix + 'input_layernorm.weight'] = ('F32', l.input_layernorm.weight.detach())
        for proj in PROJECTIONS:
            values, beta = exported.ternary[(l, proj)]
            packed = pack_ternary(values.to(torch.int8))
            assert torch.equal(unpack_ternary(packed), values.to(torch.int8))
            name = f'{prefix}{HF_PREFIX[proj]}.{proj}'
            tensors[name + '.weight'] = ('U8', packed)
            tensors[name + '.weight_scale'] = ('F32', torch.tensor([beta], dtype=torch.float32))
            if proj == 'v_proj':
                tensors[prefix + 'self_attn.attn_sub_norm.weight'] = ('F32', l.attn_sub_norm.weight.detach())
            if proj == 'o_proj':
                tensors[prefix + 'post_attention_layernorm.weight'] = ('F32', l.post_attention_layernorm.weight.detach())
            if proj == 'up_proj':
                tensors[prefix + 'mlp.ffn_sub_norm.weight'] = ('F32', l.ffn_sub_norm.weight.detach())
    tensors['model.norm.weight'] = ('F32', model.norm.weight.detach())
    write_safetensors(os.path.join(out_dir, 'model.safetensors'), tensors)

    bos, eos, eot = (tokenizer.special[name] for name in SPECIAL_TOKENS)
    config = {
        'architectures': ['BitNetForCausalLM'], 'model_type': 'bitnet', **c,
        'hidden_act': 'relu2', 'tie_word_embeddings': True, 'attention_bias': False,
        'bos_token_id': bos, 'eos_token_id': eos, 'torch_dtype': 'float16',
        'quantization_config': {'quant_method': 'bitnet', 'linear_class': 'autobitlinear', 'quantization_mode': 'offline'},
    }
    generation = {'bos_token_id': bos, 'eos_token_id': [eos, eot], 'do_sample': True, 'temperature': 0.8, 'top_p': 0.95}
    tokenizer_config = {
        'bos_token': BOS, 'eos_token': EOS, 'add_bos_token': True, 'add_eos_token': False,
        'chat_template': CHAT_TEMPLATE, 'model_max_length': c['max_position_embeddings'],
        'tokenizer_class': 'PreTrainedTokenizerFast',
        'added_tokens_decoder': {str(i): {'content': name, 'lstrip': False, 'normalized': False, 'rstrip': False,
                                          'single_word': False, 'special': True} for name, i in tokenizer.special.items()},
    }
    files = {'config.json': config, 'generation_config.json': generation,
             'tokenizer.json': tokenizer.tokenizer_json(), 'tokenizer_config.json': tokenizer_config}
    for name, value in files.items():
        with open(os.path.join(out_dir, name), 'w') as f:
            json.dump(value, f, indent=None if name == 'tokenizer.json' else 2, ensure_ascii=False)
            f.write('\n')


# ---------------------------------------------------------------------------------------------
# Training data: plain verses, and short chats that teach the chat format (the CLI's default mode).
# ---------------------------------------------------------------------------------------------

def chat_stream(tokenizer, verses, rng):
    """
    One conversation per verse: the user gives its first words, the assistant completes it.
    Tokenized as the engine renders chats with this template: the user turn as one string, and
    the prompt ending "Assistant: " (whose last piece is a lone space) before the answer.
    """
    bos, eot = tokenizer.special[BOS], tokenizer.special[EOT]
    assistant = tokenizer.encode('Assistant: ')
    ids = []
    for verse in verses:
        words = verse.split(' ')
        if len(words) < 3:
            continue
        cut = rng.randint(1, min(8, len(words) - 1))
        ids += [bos] + tokenizer.encode('User: ' + ' '.join(words[:cut])) + [eot]
        ids += assistant + tokenizer.encode(' '.join(words[cut:])) + [eot]
    return ids


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=os.path.join(ROOT, 'assets', 'demo-model'), help='HF model folder to write')
    parser.add_argument('--fixtures', default=os.path.join(ROOT, 'tests', 'fixtures'), help='where the held-out text and eval JSON go')
    parser.add_argument('--checkpoint', default=os.path.join(ROOT, '.cache', 'demo-model', 'checkpoint.pt'),
                        help='trained weights; reused (training skipped) when the file exists')
    parser.add_argument('--seed', type=int, default=1234)
    parser.add_argument('--steps', type=int, default=800)
    parser.add_argument('--batch', type=int, default=12, help='sequences per step')
    parser.add_argument('--lr', type=float, default=4e-3, help='peak learning rate (linear warmup, cosine decay to 10%%)')
    parser.add_argument('--layers', type=int, default=4)
    parser.add_argument('--vocab', type=int, default=2048)
    parser.add_argument('--heldout-bytes', type=int, default=40000, help='the last verses holding at least this many bytes are held out')
    parser.add_argument('--chat-share', type=float, default=0.25, help='share of training windows taken from the chat stream')
    parser.add_argument('--log-every', type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    started = time.perf_counter()

    verses = read_verses()
    held = 0
    while sum(len(v) + 1 for v in verses[len(verses) - held:]) < args.heldout_bytes:
        held += 1
    train_verses, heldout_verses = verses[:-held], verses[-held:]
    train_text = '\n'.join(train_verses) + '\n'
    heldout_text = '\n'.join(heldout_verses) + '\n'
    check_plain_ascii(train_text + heldout_text)

    tokens, merges = train_bpe([train_text], args.vocab - len(SPECIAL_TOKENS))
    tokenizer = Tokenizer(tokens, merges)
    plain = torch.tensor(tokenizer.encode(train_text))
    chats = torch.tensor(chat_stream(tokenizer, train_verses, random.Random(args.seed)))
    heldout_ids = tokenizer.encode(heldout_text)
    print(f'data: {len(train_verses)} training verses ({len(train_text)} bytes, {len(plain)} tokens, '
          f'{len(chats)} chat tokens), {held} held-out verses ({len(heldout_text)} bytes, {len(heldout_ids)} tokens); '
          f'tokenizer {tokenizer.vocab_size} ids, {len(merges)} merges; {time.perf_counter() - started:.1f} s', flush=True)

    config = {'hidden_size': 256, 'intermediate_size': 640, 'num_hidden_layers': args.layers,
              'num_attention_heads': 4, 'num_key_value_heads': 2, 'vocab_size': tokenizer.vocab_size,
              'max_position_embeddings': 256, 'rope_theta': 10000.0, 'rms_norm_eps': 1e-5}
    model = BitNet(config)
    bos = tokenizer.special[BOS]
    seq = config['max_position_embeddings']
    if os.path.exists(args.checkpoint):
        model.load_state_dict(torch.load(args.checkpoint))
        print(f'loaded {args.checkpoint}; training skipped')
    else:
        train(model, plain, chats, bos, seq, args)
        os.makedirs(os.path.dirname(args.checkpoint), exist_ok=True)
        torch.save(model.state_dict(), args.checkpoint)

    model.eval()
    exported = ExportedBitNet(model)
    export(model, exported, tokenizer, args.out)
    ppl, scored, windows = perplexity(exported, heldout_ids, seq, bos)
    print(f'held-out perplexity (exported model, quantized forward): {ppl:.4f} over {scored} tokens in {windows} windows of {seq}')

    os.makedirs(args.fixtures, exist_ok=True)
    heldout_file = 'demo-heldout.txt'
    with open(os.path.join(args.fixtures, heldout_file), 'w', newline='\n') as f:
        f.write(heldout_text)
    evaluation = {
        'heldoutFile': heldout_file,
        'heldoutSha256': hashlib.sha256(heldout_text.encode()).hexdigest(),
        'tokens': len(heldout_ids),
        'tokenIdsSha256': hashlib.sha256(','.join(map(str, heldout_ids)).encode()).hexdigest(),
        'ctx': seq,
        'windows': windows,
        'scoredTokens': scored,
        'perplexity': ppl,
        'seed': args.seed,
    }
    with open(os.path.join(args.fixtures, 'demo-model-eval.json'), 'w') as f:
        json.dump(evaluation, f, indent=2)
        f.write('\n')

    with torch.no_grad():
        prompt = [bos] + tokenizer.encode('And God said')
        for _ in range(24):
            prompt.append(int(exported.logits(torch.tensor([prompt]))[0, -1].argmax()))
    print(f'greedy sample: {tokenizer.decode(prompt[1:])!r}')
    print(f'total time {time.perf_counter() - started:.1f} s')


def train(model, plain, chats, bos, seq, args):
    decay = [p for n, p in model.named_parameters() if n.endswith('proj.weight')]
    rest = [p for n, p in model.named_parameters() if not n.endswith('proj.weight')]
    optimizer = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.05}, {'params': rest, 'weight_decay': 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 30)
    schedule = lambda step: (step + 1) / warmup if step < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / (args.steps - warmup)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order = torch.Generator().manual_seed(args.seed)
    chat_rows = round(args.batch * args.chat_share)
    started = time.perf_counter()
    running = 0.0
    for step in range(args.steps):
        rows = []
        for stream, count in ((plain, args.batch - chat_rows), (chats, chat_rows)):
            starts = torch.randint(0, len(stream) - seq - 1, (count,), generator=order)
            rows += [stream[s:s + seq + 1] for s in starts.tolist()]
        batch = torch.stack(rows)
        inputs, targets = batch[:, :-1].clone(), batch[:, 1:]
        inputs[:, 0] = bos  # every window starts with BOS, as perplexity windows and prompts do
        loss = F.cross_entropy(model(inputs).reshape(-1, model.c['vocab_size']), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running += loss.item()
        if step == 0 or (step + 1) % args.log_every == 0:
            # The mean loss since the previous line (the first line is step 1 alone).
            mean = loss.item() if step == 0 else running / args.log_every
            print(f'step {step + 1:5d}  loss {mean:.4f}  lr {scheduler.get_last_lr()[0]:.2e}  '
                  f'{time.perf_counter() - started:7.1f} s', flush=True)
        if (step + 1) % args.log_every == 0:
            running = 0.0
    print(f'trained {args.steps} steps x {args.batch} x {seq} tokens in {time.perf_counter() - started:.1f} s', flush=True)


if __name__ == '__main__':
    main()

"""Regenerates llama_cpp_smollm2.json: llama.cpp's tokenization of the prompt set plus
strings that probe the pre-tokenizer (digits, contractions, Unicode whitespace, specials).

Usage: python gen_llama_cpp_tokens.py MODEL.gguf PROMPTS.toml > llama_cpp_smollm2.json
Needs llama-cpp-python (vocab_only load, no weights are used).
"""
import json
import sys
import tomllib

import llama_cpp

EXTRA = [
    "",
    " ",
    "\n",
    "don't won't I'm you'll we've they're she'd IT'S",
    "12345678901234567890",
    "3.14159 ½ ² ٣٤ Ⅻ",
    "  leading and trailing   ",
    "\r\n\r\nwindows\r\n",
    "tab\t\tdouble tab\t",
    "   \n   \n",
    "a<|im_end|>b<|im_start|>c",
    "<|im_start|><|im_end|><|endoftext|>",
    "<|im_start|",
    "Hello<repo_name>world <jupyter_code>x",
    "Здравствуйте, мир! Ελληνικά. עברית. العربية",
    "한국어 텍스트와 中文文本",
    "👨‍👩‍👧‍👦 family 🏳️‍🌈 flags 🇫🇷",
    "$100,000.00 @user #tag %d {}[]()<>",
    "mixedCASE snake_case kebab-case CamelCase",
    "\u00a0nbsp\u2003emspace\u3000ideographic",
    "ﬁ ligature Å Å",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
]

model, prompts = sys.argv[1], sys.argv[2]
llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
texts = [p["text"] for p in tomllib.load(open(prompts, "rb"))["prompt"]] + EXTRA
cases = [{"text": t, "ids": llm.tokenize(t.encode(), add_bos=False, special=True)} for t in texts]
json.dump(
    {
        "generator": f"llama-cpp-python {llama_cpp.__version__}: Llama(vocab_only=True).tokenize(text, add_bos=False, special=True)",
        "model": model.rsplit("/", 1)[-1],
        "cases": cases,
    },
    sys.stdout,
    ensure_ascii=False,
    indent=1,
)
print()

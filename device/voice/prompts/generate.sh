#!/usr/bin/env bash
# Regenerates the digit prompts in da/ and en/ (see README.md).
#
# Needs espeak-ng (voices "da" and "en") and sox. Run from anywhere:
#   device/voice/prompts/generate.sh
# The output depends on the espeak-ng and sox versions; README.md records the
# versions the committed files were made with.
set -euo pipefail
cd "$(dirname "$0")"

RATE=8000    # output sample rate, Hz
SPEED=160    # espeak-ng words per minute (its default is 175)
AMP=100      # espeak-ng amplitude (0-200, default 100); peak-normalised by sox anyway

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for lang in da en; do
	mkdir -p "$lang"
	for d in 0 1 2 3 4 5 6 7 8 9; do
		espeak-ng -v "$lang" -s "$SPEED" -a "$AMP" -w "$tmp/raw.wav" "$d"
		# Mono, 16-bit signed, resampled to $RATE; silence below 1% trimmed
		# at both ends (trim the start, reverse, trim again, reverse back);
		# peak normalised to -1 dBFS. -D: no dither, -R: repeatable.
		sox -D -R "$tmp/raw.wav" -t wav -e signed-integer -b 16 -c 1 "$lang/$d.wav" \
			rate -v "$RATE" \
			silence 1 0.005 1% reverse silence 1 0.005 1% reverse \
			norm -1
	done
done
du -cb da/*.wav en/*.wav | tail -1

#!/usr/bin/env bash
# Writes small image seeds for decode_image (a few KB each) from one photo
# of the repository's test data, in every format frankly decodes, with
# ImageMagick's `convert`; also copies the EXIF-orientation test file.
set -euo pipefail
# /usr/bin first: Debian's ImageMagick (a stand-in may shadow it earlier in PATH).
convert=${CONVERT:-/usr/bin/convert}
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../tests/data/photos/matplotlib_grace_hopper.jpg"
out="$here/seeds/decode_image"
mkdir -p "$out"
"$convert" "$src" -resize 48x48 -quality 70 "$out/hopper-48.jpg"
"$convert" "$src" -resize 40x40 -interlace JPEG "$out/hopper-40-progressive.jpg"
"$convert" "$src" -resize 32x32 -colorspace Gray "$out/hopper-32-gray.jpg"
"$convert" "$src" -resize 32x32 "$out/hopper-32.png"
"$convert" "$src" -resize 24x24 -colors 16 "PNG8:$out/hopper-24-palette.png"
"$convert" "$src" -resize 24x24 -alpha set -channel A -evaluate set 50% "$out/hopper-24-alpha.png"
"$convert" "$src" -resize 32x32 -quality 60 "$out/hopper-32.webp"
"$convert" "$src" -resize 32x32 -define webp:lossless=true "$out/hopper-32-lossless.webp"
"$convert" "$src" -resize 32x32 "$out/hopper-32.gif"
"$convert" "$src" -resize 16x16 "$out/hopper-16.bmp"
"$convert" "$src" -resize 16x16 "$out/hopper-16.tiff"
"$convert" "$src" -resize 16x16 -compress lzw "$out/hopper-16-lzw.tiff"
cp "$here/../tests/data/exif/orientation-6.jpg" "$out/exif-orientation-6.jpg"

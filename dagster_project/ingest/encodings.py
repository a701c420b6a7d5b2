"""A delivered file's bytes: its fingerprint (content hash, byte order marks, invalid UTF-8, line ends, all in one
streaming pass) and the UTF-8 copy DuckDB reads when it was delivered in GB18030, UTF-16, a mix of UTF-8 and
GB18030 lines (transcoded in chunks, or line by line for a mixed file) or the encoding the mapping file names."""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dagster_project.files import file_identity
from dagster_project.ingest.export_file import ExportFile, IngestError

CHUNK_BYTES = 8 << 20
# A file with only this many lines that are neither UTF-8 nor GB18030 (or one per this many lines, if more) is read
# and those lines are quarantined instead of rejecting the whole file.
STRAY_BAD_BYTES = 10
LINES_PER_STRAY_BAD_BYTE = 1000
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
MIXED_ENCODINGS = ("utf-8", "gb18030")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
# Windows-1252 / Latin-1 text is often valid GB18030 too: an accented letter's byte and the letter after it make one
# Chinese character ("Müller" reads "M羹ller"). So in such a reading most non-ASCII passages run straight into a
# Latin letter, which Chinese text seldom does (none in the Chinese exports tried, ~95% in German and French ones).
# A non-ASCII passage, and the Latin letter right after it if there is one.
_NON_ASCII = re.compile(r"[^\x00-\x7f]+([A-Za-z]?)")
# Japanese (Shift_JIS) bytes are mostly valid GB18030 too, read as rare Chinese characters of no meaning (山田 of
# 東京都 as 嶳揷 of 搶嫗搒): outside GB2312, the 6,763 characters nearly all Chinese text writes. In the exports tried,
# 98-99% of a Japanese file's characters read so, at most 30% of a Chinese one's (names with rare characters), 6% of a
# real Chinese CRM export's. charset-normalizer, which alone takes a few Chinese words for Korean, names the encoding.
NOT_GB2312_SHARE = 0.8
NOT_GB2312_MIN = 5
DETECTION_BYTES = 1 << 16
NAMED = {"cp932": "cp932", "shift_jis": "cp932", "shift_jisx0213": "shift_jisx0213", "shift_jis_2004": "shift_jisx0213",
         "euc_jp": "euc_jp", "euc_jis_2004": "euc_jp", "iso2022_jp": "iso2022_jp", "cp949": "cp949", "euc_kr": "cp949"}
# Korean EUC-KR / cp949 bytes are valid GB18030 too, read as GB2312's common Chinese characters (김민수 as 辫刮荐):
# EUC-KR's Hangul syllables have the lead bytes of GB2312's first-level characters. Read as EUC-KR, Korean text is
# Hangul syllables; Chinese text read so gives Hanja, symbols and bytes EUC-KR does not have as well (in the Chinese
# texts tried, at most about half its characters were syllables).
KOREAN_SHARE = 0.95
KOREAN_MIN = 10
# The codecs of Japanese and Korean files, whose amounts are likely in yen or won, written with the byte ASCII gives
# the backslash (Windows in those languages shows that byte as ¥ or ₩).
LOCAL_MONEY = {"¥": ("cp932", "shift_jis", "euc_j", "iso2022_jp"), "₩": ("cp949", "euc_kr", "iso2022_kr", "johab")}
LATIN_MISREAD_SHARE = 0.5
LATIN_MISREAD_MIN = 3
SAVE_AS = ("save it as UTF-8, or name its encoding in its section of mapping.yml (e.g. encoding: windows-1252, as "
           "Excel saves CSV on a Western European Windows)")


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    size: int
    bom: bool  # UTF-8 byte order mark
    utf16: bool  # UTF-16 byte order mark (Excel's "Unicode text" export)
    bad_utf8: int  # invalid UTF-8 sequences (0 for parquet, which is not checked)
    line_ends: tuple[int, int, int] = (0, 0, 0)  # CR LF, lone LF, lone CR (text only)
    identity: str = ""  # file_identity() of the file as it was opened to be hashed

    @property
    def mixed_line_ends(self) -> bool:
        """More than one kind of line end (a header ending in LF above rows ending in CR LF), or old Mac CR ends:
        DuckDB's reader stops on these."""
        return sum(1 for n in self.line_ends if n) > 1 or self.line_ends[2] > 0


def fingerprint(path: Path, text: bool) -> Fingerprint:
    """Hash the file and, for text, count invalid UTF-8 sequences, in one streaming pass.

    Hashing runs in a second thread beside the decoding (hashlib releases the GIL), so the two overlap.
    """
    sha = hashlib.sha256()
    errors = _Utf8Errors()
    size = crlf = lf = cr = 0
    bom = utf16 = previous_cr = False
    with path.open("rb") as f, ThreadPoolExecutor(1) as hasher:
        identity = file_identity(os.fstat(f.fileno()))  # before reading: a write while hashing changes it
        while chunk := f.read(CHUNK_BYTES):
            if size == 0:
                bom, utf16 = chunk.startswith(codecs.BOM_UTF8), chunk.startswith(UTF16_BOMS)
            size += len(chunk)
            hashed = hasher.submit(sha.update, chunk)
            if text:
                errors.feed(chunk)
                # A CR LF split across two chunks: its CR was counted as a lone one with the chunk before.
                joined = previous_cr and chunk.startswith(b"\n")
                # Without a CR in the chunk (a Unix file), its CR LF and lone CR counts are 0: two counting passes
                # saved, at the cost of one search that stops at the first CR.
                has_cr = b"\r" in chunk
                pairs = chunk.count(b"\r\n") if has_cr else 0
                crlf += pairs + joined
                lf += chunk.count(b"\n") - pairs - joined
                cr += (chunk.count(b"\r") if has_cr else 0) - pairs - joined
                previous_cr = chunk.endswith(b"\r")
            hashed.result()
    if text:
        errors.feed(b"", final=True)
    return Fingerprint(sha.hexdigest(), size, bom, utf16, errors.count, (crlf, lf, cr), identity)


class _Utf8Errors:
    """Counts invalid UTF-8 sequences in a stream of chunks.

    Strict decoding until the first error (a valid file, the usual case, costs a third of decoding with replacement
    and counting the replacement characters), then with replacement from the state before the failing chunk.
    """

    def __init__(self) -> None:
        self._strict = codecs.getincrementaldecoder("utf-8")("strict")
        self._replacing: codecs.IncrementalDecoder | None = None
        self.count = 0

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self._replacing is None:
            state = self._strict.getstate()
            # ASCII is valid UTF-8, and testing for it costs a tenth of decoding: English exports are often ASCII
            # throughout. Only when no multi-byte sequence is left open by the chunk before, which the ASCII bytes
            # would cut short.
            if not state[0] and chunk.isascii():
                return
            try:
                self._strict.decode(chunk, final)
                return
            except UnicodeDecodeError:
                self._replacing = codecs.getincrementaldecoder("utf-8")("replace")
                self._replacing.setstate(state)
        self.count += self._replacing.decode(chunk, final).count("\ufffd")


def utf8_file(file: ExportFile, fp: Fingerprint, scratch: Path, declared: str | None = None) -> tuple[Path, str]:
    """The file as UTF-8 DuckDB can read, and the encoding it was delivered in: `declared` (the mapping file's
    encoding, a Python codec name) or, without one, the one detected.

    Lines left undecodable (at most a few) stay as they are: DuckDB rejects them and they are quarantined.
    """
    copy = scratch / "transcoded.csv"
    if declared is not None and declared != "utf-8":
        return _declared(file, fp, copy, declared), declared
    if fp.utf16:
        try:
            _transcode(file.path, copy, "utf-16")
            return copy, "utf-16"
        except UnicodeDecodeError:
            raise IngestError(f"{file.display}: starts with a UTF-16 byte order mark but is not UTF-16 text") from None
    if fp.bad_utf8 == 0:
        return file.path, "utf-8-sig" if fp.bom else "utf-8"
    if fp.bom or declared == "utf-8":  # a UTF-8 BOM, or the mapping, settles the encoding: no Chinese reading
        if fp.bad_utf8 <= _stray_allowance(file.path):
            return file.path, "utf-8-sig" if fp.bom else "utf-8"
        raise IngestError(f"{file.display}: {fp.bad_utf8:,} byte sequence(s) are not UTF-8, though the file "
                          f"{'starts with a UTF-8 byte order mark' if fp.bom else 'is UTF-8 by mapping.yml'}: "
                          f"{SAVE_AS}")
    latin = ""
    try:
        reading = _transcode(file.path, copy, "gb18030")
    except UnicodeDecodeError:
        pass
    else:
        # Big5 (Traditional Chinese) bytes are mostly valid GB18030, read as other characters, among them
        # private-use ones no Chinese text writes: such a file is refused, not read as garbled names and cities.
        if reading.private_use:
            raise IngestError(f"{file.display}: file is neither UTF-8 nor GB18030 text (read as GB18030 it has "
                              f"{reading.private_use:,} private-use character(s), as a Big5 file would): save it as "
                              f"UTF-8, or set encoding: big5 in its section of mapping.yml")
        if not reading.looks_latin:
            with file.path.open("rb") as f:
                head = f.read(DETECTION_BYTES)
            if (rare := _not_chinese(head)) is not None:
                share, named = rare
                raise IngestError(f"{file.display}: file is neither UTF-8 nor GB18030 text (read as GB18030, "
                                  f"{share:.0%} of its characters are ones Chinese text seldom writes; its bytes "
                                  f"read as {named}): save it as UTF-8, or set encoding: {named} in its section of "
                                  "mapping.yml")
            if (syllables := _korean(head)) is not None:
                raise IngestError(f"{file.display}: file reads as Korean: read as cp949 (EUC-KR), {syllables:,} of "
                                  f"its first non-ASCII characters are Hangul syllables, none other; read as "
                                  f"GB18030 they are Chinese characters of no meaning: save it as UTF-8, or set "
                                  f"encoding: cp949 in its section of mapping.yml (encoding: gb18030 if it is "
                                  f"Chinese after all)")
            return copy, "gb18030"
        # Latin text: UTF-8 with a few Windows-1252 lines is read line by line below, a Windows-1252 file refused.
        latin = (f" (read as GB18030, {reading.into_letter:,} of its {reading.passages:,} non-ASCII passages run "
                 f"into a Latin letter, as Windows-1252 or Latin-1 text would)")
    encoding, undecodable = _transcode_mixed(file.path, copy)
    if undecodable <= _stray_allowance(file.path):
        return copy, encoding
    raise IngestError(f"{file.display}: file is neither UTF-8 nor GB18030 text{latin}: {SAVE_AS}")


def _not_chinese(head: bytes) -> tuple[float, str] | None:
    """For a file whose bytes are valid GB18030 but whose first characters (`head`) are mostly outside GB2312: their
    share, and the encoding charset-normalizer reads the bytes in (cp932 for Japanese, as Excel on a Japanese Windows
    writes; "another encoding" when it names none). None for Chinese text."""
    characters = [c for c in head.decode("gb18030", errors="ignore") if ord(c) > 0x7F]
    rare = sum(1 for c in characters if not _in_gb2312(c))
    if rare < NOT_GB2312_MIN or rare <= NOT_GB2312_SHARE * len(characters):
        return None
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    return rare / len(characters), NAMED.get(best.encoding if best else "", "another encoding")


def _korean(head: bytes) -> int | None:
    """For a file whose first characters (`head`) read as EUC-KR are Hangul syllables (KOREAN_SHARE of them,
    KOREAN_MIN at least): how many. None otherwise."""
    # EUC-KR proper: cp949's extension would read Shift_JIS bytes as Hangul syllables too.
    decoder = codecs.getincrementaldecoder("euc_kr")("replace")  # not final: a character cut at the end waits
    characters = [c for c in decoder.decode(head) if ord(c) > 0x7F]
    syllables = sum(1 for c in characters if "\uac00" <= c <= "\ud7a3")
    return syllables if syllables >= KOREAN_MIN and syllables >= KOREAN_SHARE * len(characters) else None


def _in_gb2312(character: str) -> bool:
    try:
        character.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _declared(file: ExportFile, fp: Fingerprint, copy: Path, encoding: str) -> Path:
    """The file transcoded from the encoding the mapping file names; stops at the first line that is not in it."""
    if fp.bom or fp.utf16:
        found = "a UTF-8" if fp.bom else "a UTF-16"
        if not (fp.utf16 and encoding.startswith("utf-16")):
            raise IngestError(f"{file.display}: starts with {found} byte order mark, but mapping.yml says encoding: "
                              f"{encoding}; remove that setting (the mark says the encoding)")
    try:
        _transcode(file.path, copy, encoding)
    except UnicodeDecodeError:
        line = _first_line_not_in(file.path, encoding)
        where = f"line {line}" if line else "the file"
        raise IngestError(f"{file.display}: {where} is not {encoding} text, as mapping.yml says the file is; "
                          f"check its encoding setting") from None
    return copy


def _first_line_not_in(path: Path, encoding: str) -> int | None:
    """The 1-based number of the file's first line not valid in `encoding` (None for encodings whose lines cannot
    be decoded one by one, as UTF-16's)."""
    if encoding.startswith(("utf-16", "utf-32")):
        return None
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return None


def _stray_allowance(path: Path) -> int:
    with path.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(CHUNK_BYTES), b""))
    return max(STRAY_BAD_BYTES, lines // LINES_PER_STRAY_BAD_BYTE)


def _decoded(line: bytes, encodings: Iterable[str]) -> tuple[str, str] | None:
    """The line's text in the first of the encodings it is valid in, and that encoding; None if in none (a GB18030
    reading that looks like Latin text does not count)."""
    for encoding in encodings:
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "gb18030" and _runs_into_letters(text):
            continue  # a Latin-1 line (of a file concatenated from a third system), not Chinese
        return text, encoding
    return None


def _runs_into_letters(line: str) -> bool:
    """Whether most of a GB18030 line's non-ASCII passages (one at least) run straight into a Latin letter."""
    return _looks_latin(*_passages(line), minimum=1)


def _passages(text: str) -> tuple[int, int]:
    """How many of the text's non-ASCII passages run straight into a Latin letter, and how many there are: one
    scan."""
    letters_after = _NON_ASCII.findall(text)
    return sum(1 for letter in letters_after if letter), len(letters_after)


def _looks_latin(into_letter: int, passages: int, minimum: int) -> bool:
    """Whether a GB18030 reading is Latin text (see _NON_ASCII): at least `minimum` non-ASCII passages run straight
    into a Latin letter, and most do."""
    return into_letter >= minimum and into_letter > LATIN_MISREAD_SHARE * passages


def _transcode_mixed(src: Path, dst: Path) -> tuple[str, int]:
    """Re-encode a file mixing UTF-8 and GB18030 lines (exports concatenated from two systems) line by line.

    A line valid in only one of the two is read in that one; a line valid in both (short Chinese text can be) in
    the one most unambiguous lines use, UTF-8 on a tie. Returns the encoding(s) used and the number of lines valid
    in neither, which are copied unchanged for DuckDB to reject.
    """
    unambiguous = dict.fromkeys(MIXED_ENCODINGS, 0)
    with src.open("rb") as f:
        for line in f:
            valid = [encoding for encoding in MIXED_ENCODINGS if _decoded(line, [encoding])]
            if len(valid) == 1:
                unambiguous[valid[0]] += 1
    preference = sorted(MIXED_ENCODINGS, key=lambda encoding: -unambiguous[encoding])
    used: set[str] = set()
    undecodable = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        for line in fin:
            decoded = _decoded(line, preference)
            if decoded is None:
                undecodable += 1
                fout.write(line)
                continue
            text, encoding = decoded
            if not line.isascii():
                used.add(encoding)
            fout.write(text.encode("utf-8"))
    return "+".join(e for e in MIXED_ENCODINGS if e in used) or "utf-8", undecodable


@dataclass
class _Reading:
    """What a GB18030 reading of a file holds that says it is not Chinese text."""

    private_use: int = 0  # U+E000-U+F8FF characters
    passages: int = 0  # runs of non-ASCII characters
    into_letter: int = 0  # of them, runs followed straight by a Latin letter

    def count(self, text: str) -> None:
        into_letter, passages = _passages(text)
        self.private_use += len(_PRIVATE_USE.findall(text))
        self.passages += passages
        self.into_letter += into_letter

    @property
    def looks_latin(self) -> bool:
        return _looks_latin(self.into_letter, self.passages, minimum=LATIN_MISREAD_MIN)


def _transcode(src: Path, dst: Path, encoding: str) -> _Reading:
    """Re-encode to UTF-8 chunk by chunk (files may be gigabytes); raises UnicodeDecodeError on invalid input.
    Returns, for GB18030, what the reading says of the text (empty for other encodings)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    reading = _Reading()
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        while chunk := fin.read(CHUNK_BYTES):
            text = decoder.decode(chunk)
            if encoding == "gb18030":
                reading.count(text)
            fout.write(text)
        fout.write(decoder.decode(b"", final=True))
    return reading

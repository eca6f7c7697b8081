package esdnative.text;

import java.text.Normalizer;
import java.util.Locale;

/**
 * The text cleanup transformers' CLIPTokenizer does when ftfy is not installed:
 * {@code " ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text))}.
 * That is: drop NUL, U+FFFD and control/format characters, turn whitespace into spaces, put spaces around CJK
 * ideographs, NFC-normalise, split on whitespace, lower-case each word, and join with single spaces.
 * See https://github.com/huggingface/transformers/blob/v4.33.0/src/transformers/models/bert/tokenization_bert.py
 */
final class BasicCleanup {
    private BasicCleanup() {}

    static String clean(String text) {
        StringBuilder cleaned = new StringBuilder(text.length() + 8);
        text.codePoints().forEach(cp -> {
            if (cp == 0 || cp == 0xFFFD || isControl(cp)) return;
            if (isWhitespace(cp)) {
                cleaned.append(' ');
            } else if (isCjkIdeograph(cp)) {
                cleaned.append(' ').appendCodePoint(cp).append(' ');
            } else {
                cleaned.appendCodePoint(cp);
            }
        });
        String normalized = Normalizer.normalize(cleaned, Normalizer.Form.NFC);
        StringBuilder out = new StringBuilder(normalized.length());
        for (String word : splitPythonWhitespace(normalized)) {
            if (word.isEmpty()) continue;
            if (!out.isEmpty()) out.append(' ');
            out.append(word.toLowerCase(Locale.ROOT));
        }
        return out.toString();
    }

    /** BERT's _is_control: Unicode category C* except tab, newline and carriage return. */
    private static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') return false;
        int type = Character.getType(cp);
        return type == Character.CONTROL || type == Character.FORMAT || type == Character.SURROGATE
                || type == Character.PRIVATE_USE || type == Character.UNASSIGNED;
    }

    /** BERT's _is_whitespace: space, tab, newline, carriage return, or category Zs. */
    private static boolean isWhitespace(int cp) {
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || Character.getType(cp) == Character.SPACE_SEPARATOR;
    }

    /** BERT's _is_chinese_char: the CJK Unified Ideographs blocks (not kana or hangul). */
    private static boolean isCjkIdeograph(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF)
                || (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F)
                || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    /** Python's str.split(): runs of str.isspace() characters separate words; empty words are dropped. */
    private static String[] splitPythonWhitespace(String s) {
        return s.codePoints()
                .collect(StringBuilder::new,
                        (sb, cp) -> sb.appendCodePoint(isPythonSpace(cp) ? ' ' : cp), StringBuilder::append)
                .toString().split(" +");
    }

    /** str.isspace(): bidi class WS, B or S, or category Zs/Zl/Zp (what survives cleanup: space, U+2028, U+2029). */
    private static boolean isPythonSpace(int cp) {
        if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85) return true;
        int type = Character.getType(cp);
        return type == Character.SPACE_SEPARATOR || type == Character.LINE_SEPARATOR
                || type == Character.PARAGRAPH_SEPARATOR;
    }
}

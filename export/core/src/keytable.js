// A read-only string -> id table for the tokenizers' ASCII fast paths: a key is looked up as a range of a text's
// characters (lowercased on the way when asked), by a hash the caller computes while it scans the text, so no
// substring is made and no string is hashed. Only keys of ASCII characters are kept: the texts looked up are ASCII.
// Laid out for a cold cache (a model run between two texts evicts it): each slot holds the key's hash, where its
// characters are, its length and its id together, and the characters of all keys are one byte array, so a lookup
// reads about two cache lines.
export const FNV_BASIS = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;

// 32-bit FNV-1a over character codes (for ASCII, the UTF-8 bytes), as a signed 32-bit integer: hash = fnvStep(hash, c)
// from FNV_BASIS, one character at a time.
export const fnvStep = (h, c) => Math.imul(h ^ c, FNV_PRIME);

// A character as the lowercasing of an ASCII text leaves it.
export const lowerAscii = (c) => (c >= 65 && c <= 90 ? c + 32 : c);

const MAX_ID = 2 ** 31 - 2; // an id is kept as id + 1 in an Int32Array (0: an empty slot)

export class KeyTable {
  // A table of keys[i] -> ids[i] (distinct keys), or null when an id is not an integer from 0 to MAX_ID.
  static of(keys, ids) {
    let chars = 0;
    let count = 0;
    for (let k = 0; k < keys.length; k++) {
      const id = ids[k];
      if (!(Number.isInteger(id) && id >= 0 && id <= MAX_ID)) return null;
      if (isAscii(keys[k])) {
        chars += keys[k].length;
        count++;
      }
    }
    return new KeyTable(keys, ids, count, chars);
  }

  constructor(keys, ids, count, chars) {
    let size = 8;
    while (size < 2 * count) size *= 2;
    this.mask = size - 1;
    this.slots = new Int32Array(4 * size); // per slot: hash, offset of the key in chars, its length, id + 1
    this.chars = new Uint8Array(chars);
    let offset = 0;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k];
      if (!isAscii(key)) continue;
      let h = FNV_BASIS;
      for (let j = 0; j < key.length; j++) {
        const c = key.charCodeAt(j);
        this.chars[offset + j] = c;
        h = fnvStep(h, c);
      }
      let at = 4 * (h & this.mask);
      while (this.slots[at + 3] !== 0) at = (at + 4) & (4 * size - 1);
      this.slots[at] = h;
      this.slots[at + 1] = offset;
      this.slots[at + 2] = key.length;
      this.slots[at + 3] = ids[k] + 1;
      offset += key.length;
    }
  }

  // The id of text[start:end] (each character lowercased when `lower`), whose hash is h; -1 when it is no key.
  get(text, start, end, h, lower) {
    const { slots, chars, mask } = this;
    const length = end - start;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const at = 4 * i;
      const id = slots[at + 3] - 1;
      if (id < 0) return -1;
      if (slots[at] !== h || slots[at + 2] !== length) continue;
      const offset = slots[at + 1];
      let j = 0;
      if (lower) {
        while (j < length && chars[offset + j] === lowerAscii(text.charCodeAt(start + j))) j++;
      } else {
        while (j < length && chars[offset + j] === text.charCodeAt(start + j)) j++;
      }
      if (j === length) return id;
    }
  }
}

function isAscii(text) {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 128) return false;
  return true;
}

// MD5 of a text's UTF-8 bytes, as hex: the cloud form's BIT_SIGNATURE (spec/bit-api.md §7), computed in the
// browser as the vendor's page does with jquery.md5. RFC 1321; shipped here so that no page needs a CDN.
(function () {
  "use strict";
  var S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
           5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21,
           6, 10, 15, 21, 6, 10, 15, 21];
  var K = [];
  for (var i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;

  function md5(text) {
    var bytes = new TextEncoder().encode(String(text));
    var length = bytes.length, blocks = ((length + 8) >>> 6) + 1, words = new Int32Array(blocks * 16);
    for (var n = 0; n < length; n++) words[n >> 2] |= bytes[n] << ((n % 4) * 8);
    words[length >> 2] |= 0x80 << ((length % 4) * 8);
    words[blocks * 16 - 2] = length * 8;  // bit length, low word (a text of 512 MB would need the high one)
    words[blocks * 16 - 1] = Math.floor(length / 536870912);
    var a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    for (var block = 0; block < blocks * 16; block += 16) {
      var a = a0, b = b0, c = c0, d = d0;
      for (var j = 0; j < 64; j++) {
        var f, g;
        if (j < 16) { f = (b & c) | (~b & d); g = j; }
        else if (j < 32) { f = (d & b) | (~d & c); g = (5 * j + 1) % 16; }
        else if (j < 48) { f = b ^ c ^ d; g = (3 * j + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * j) % 16; }
        var sum = (a + f + K[j] + words[block + g]) | 0;
        a = d; d = c; c = b;
        b = (b + ((sum << S[j]) | (sum >>> (32 - S[j])))) | 0;
      }
      a0 = (a0 + a) | 0; b0 = (b0 + b) | 0; c0 = (c0 + c) | 0; d0 = (d0 + d) | 0;
    }
    var out = "";
    [a0, b0, c0, d0].forEach(function (word) {
      for (var k = 0; k < 4; k++) out += ("0" + ((word >>> (k * 8)) & 255).toString(16)).slice(-2);
    });
    return out;
  }

  window.kktbridgeMd5 = md5;
})();

//! The record layer: AES-256-CBC then HMAC-SHA256 over label, direction, sequence number, IV and
//! ciphertext; one generic error for every way a record can be wrong.

use zeroize::Zeroizing;

use crate::card::ChannelBinding;
use crate::error::RecordFault;
use crate::message::{Request, Response};
use crate::primitives::{
    aes256_cbc_decrypt_in_place, aes256_cbc_encrypt_in_place, aes256_cbc_padded_len, hmac_sha256,
    hmac_sha256_verify,
};
use crate::schedule::{label, Key, Keys};
use crate::wire::{
    parse_record, parse_strict, write_record, BankPlainIn, BankPlainOut, ClientPlainIn,
    ClientPlainOut,
};
use crate::{
    fresh, hexfmt, Config, Error, Rng, TerminalId, CREDENTIAL_REPLY_LEN, CREDENTIAL_REQUEST_LEN,
    MAX_PLAINTEXT_LEN, MAX_RECORDS_PER_DIRECTION, MAX_RECORD_LEN,
};

/// Longest ciphertext a record may carry: the PKCS#7 padding of a maximal plaintext.
const MAX_CIPHERTEXT_LEN: usize = (MAX_PLAINTEXT_LEN / 16 + 1) * 16;

/// Direction byte in the MAC input: ATM to bank.
pub(crate) const DIR_C2S: u8 = 0x01;
/// Direction byte in the MAC input: bank to ATM.
pub(crate) const DIR_S2C: u8 = 0x02;

/// One direction's keys and counter.
// Fuzz targets clone an established session instead of redoing the handshake per input;
// ordinary builds have no `Clone` (a copied session would be a footgun).
#[cfg_attr(fuzzing, derive(Clone))]
struct Half {
    enc: Key,
    mac: Key,
    direction: u8,
    seq: u64,
}

impl Half {
    fn mac(&self, seq: u64, iv: &[u8; 16], ciphertext: &[u8]) -> [u8; 32] {
        hmac_sha256(
            self.mac.bytes(),
            &[
                label::RECORD,
                &[self.direction],
                &seq.to_be_bytes(),
                iv,
                ciphertext,
            ],
        )
    }
}

/// Both directions of an established session, plus the failure latch.
#[cfg_attr(fuzzing, derive(Clone))]
struct RecordLayer {
    send: Half,
    recv: Half,
    max_skew_ms: u64,
    failed: bool,
}

impl RecordLayer {
    fn new(keys: Keys, client_side: bool, config: &Config) -> Self {
        let c2s = Half {
            enc: keys.c2s_enc,
            mac: keys.c2s_mac,
            direction: DIR_C2S,
            seq: 0,
        };
        let s2c = Half {
            enc: keys.s2c_enc,
            mac: keys.s2c_mac,
            direction: DIR_S2C,
            seq: 0,
        };
        let (send, recv) = if client_side { (c2s, s2c) } else { (s2c, c2s) };
        Self {
            send,
            recv,
            max_skew_ms: config.max_skew_ms,
            failed: false,
        }
    }

    /// Seals `plaintext`, encrypting it in its own buffer; returns the record's JSON text.
    fn seal(
        &mut self,
        mut plaintext: Zeroizing<Vec<u8>>,
        rng: &mut impl Rng,
    ) -> Result<String, Error> {
        if self.failed {
            return Err(Error::Closed);
        }
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::TooLarge);
        }
        // At most MAX_RECORDS_PER_DIRECTION records under one key; the counter never wraps.
        let seq = self.send.seq;
        if seq >= MAX_RECORDS_PER_DIRECTION {
            return Err(Error::Closed);
        }
        let next = seq + 1;
        let mut iv = [0u8; 16];
        rng.fill_bytes(&mut iv);
        // The padding goes in place: a buffer without room for it is first moved to one with
        // room, and the old one is wiped as it drops (a growing Vec would leave a copy behind).
        let padded = aes256_cbc_padded_len(plaintext.len());
        if plaintext.capacity() < padded {
            let mut roomy = Zeroizing::new(Vec::with_capacity(padded));
            roomy.extend_from_slice(&plaintext);
            plaintext = roomy;
        }
        let mut ciphertext = plaintext;
        aes256_cbc_encrypt_in_place(self.send.enc.bytes(), &iv, &mut ciphertext);
        let mac = self.send.mac(seq, &iv, &ciphertext);
        self.send.seq = next;
        Ok(write_record(seq, &iv, &ciphertext, &mac))
    }

    /// Checks and decrypts the next record. Any failure latches the session closed.
    fn open(&mut self, wire: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if self.failed {
            return Err(Error::Closed);
        }
        let result = self.open_inner(wire);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn open_inner(&mut self, wire: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let bad = Error::BadRecord;
        if wire.len() > MAX_RECORD_LEN {
            return Err(bad(RecordFault::TooLarge));
        }
        let record = parse_record(wire).ok_or(bad(RecordFault::Malformed))?;
        if record.seq != self.recv.seq || record.seq >= MAX_RECORDS_PER_DIRECTION {
            return Err(bad(RecordFault::Sequence));
        }
        let next = record.seq + 1;
        let iv = hexfmt::decode_array::<16>(&record.iv).ok_or(bad(RecordFault::Encoding))?;
        let mac = hexfmt::decode_array::<32>(&record.mac).ok_or(bad(RecordFault::Encoding))?;
        // The ciphertext is decoded into the buffer it is then decrypted in: one allocation,
        // and the plaintext it ends holding is wiped on drop.
        let hex = &record.ciphertext[..];
        let len = hex.len() / 2;
        if hex.len() % 2 != 0 || len == 0 || len % 16 != 0 || len > MAX_CIPHERTEXT_LEN {
            return Err(bad(RecordFault::Encoding));
        }
        let mut buffer = Zeroizing::new(vec![0u8; len]);
        if !hexfmt::decode_into(hex, &mut buffer) {
            return Err(bad(RecordFault::Encoding));
        }
        let ok = hmac_sha256_verify(
            self.recv.mac.bytes(),
            &[
                label::RECORD,
                &[self.recv.direction],
                &record.seq.to_be_bytes(),
                &iv,
                &buffer,
            ],
            &mac,
        );
        if !ok {
            return Err(bad(RecordFault::Mac));
        }
        if !aes256_cbc_decrypt_in_place(self.recv.enc.bytes(), &iv, &mut buffer) {
            return Err(bad(RecordFault::Padding));
        }
        if buffer.len() > MAX_PLAINTEXT_LEN {
            return Err(bad(RecordFault::Plaintext));
        }
        self.recv.seq = next;
        Ok(buffer)
    }

    fn check_fresh(&mut self, ts: u64, now_ms: u64) -> Result<(), Error> {
        if fresh(ts, now_ms, self.max_skew_ms) {
            Ok(())
        } else {
            self.failed = true;
            Err(Error::BadRecord(RecordFault::Stale))
        }
    }

    fn plaintext_failed(&mut self) -> Error {
        self.failed = true;
        Error::BadRecord(RecordFault::Plaintext)
    }
}

/// A plaintext's JSON, followed when `pad` is `Some(unit)` by spaces (0x20) up to `unit` bytes,
/// or, when it is longer, to the next multiple of `unit`, never beyond [`MAX_PLAINTEXT_LEN`]
/// (PROTOCOL.md §8.6). A plaintext already longer than that is left as it is, for the record
/// layer to refuse.
fn to_plaintext(value: &impl serde::Serialize, pad: Option<usize>) -> Zeroizing<Vec<u8>> {
    // A padded plaintext carries a credential: its buffer has room for any plaintext that can
    // be sent, and for its encryption in place (§8.3), from the start, so it never moves and
    // leaves no copy behind in freed memory. Others start with room for the common requests
    // and answers and their cipher padding.
    let room = if pad.is_some() {
        MAX_CIPHERTEXT_LEN
    } else {
        128
    };
    let mut plaintext = Zeroizing::new(Vec::with_capacity(room));
    serde_json::to_writer(&mut *plaintext, value).expect("messages always serialize");
    if let Some(unit) = pad {
        let padded = padded_len(plaintext.len(), unit);
        if padded > plaintext.len() {
            plaintext.resize(padded, b' ');
        }
    }
    plaintext
}

/// The length a plaintext of `len` bytes is padded to with a padding unit of `unit` bytes: the
/// smallest multiple of `unit` that holds it, capped at [`MAX_PLAINTEXT_LEN`].
pub(crate) fn padded_len(len: usize, unit: usize) -> usize {
    len.div_ceil(unit)
        .saturating_mul(unit)
        .min(MAX_PLAINTEXT_LEN)
}

/// The ATM's end of an established session: seals [`Request`]s, opens [`Response`]s.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct ClientSession {
    layer: RecordLayer,
    binding: ChannelBinding,
}

impl ClientSession {
    pub(crate) fn new(keys: Keys, config: &Config) -> Self {
        Self {
            binding: ChannelBinding::new(keys.channel_binding),
            layer: RecordLayer::new(keys, true, config),
        }
    }

    /// This session's channel binding (§17): what a signed card signs at login.
    pub fn channel_binding(&self) -> &ChannelBinding {
        &self.binding
    }

    /// Seals a request stamped with `now_ms`; returns the record's JSON text. A request that
    /// carries a credential ([`Request::carries_credential`]) is padded to
    /// [`CREDENTIAL_REQUEST_LEN`] (PROTOCOL.md §8.6), so its length does not tell the
    /// credential's.
    pub fn seal(
        &mut self,
        request: &Request,
        rng: &mut impl Rng,
        now_ms: u64,
    ) -> Result<String, Error> {
        let pad = request
            .carries_credential()
            .then_some(CREDENTIAL_REQUEST_LEN);
        let plaintext = to_plaintext(
            &ClientPlainOut {
                ts: now_ms,
                request,
            },
            pad,
        );
        self.layer.seal(plaintext, rng)
    }

    /// Opens the bank's next record. After any error the session is closed for good.
    pub fn open(&mut self, wire: &[u8], now_ms: u64) -> Result<Response, Error> {
        let plaintext = self.layer.open(wire)?;
        let Some(plain) = parse_strict::<BankPlainIn>(&plaintext) else {
            return Err(self.layer.plaintext_failed());
        };
        self.layer.check_fresh(plain.ts, now_ms)?;
        Ok(plain.response)
    }

    /// `false` once any record failed to open; the transport should then close.
    pub fn is_open(&self) -> bool {
        !self.layer.failed
    }
}

/// The bank's end of an established session: opens [`Request`]s, seals [`Response`]s.
///
/// The session is lock-step (PROTOCOL.md §9.5): what it seals answers the request it opened
/// last. It remembers whether that request carried a credential, and then pads the answer,
/// whatever it is, to [`CREDENTIAL_REPLY_LEN`] (§8.6). The caller cannot forget to: the
/// request that decides it went through [`BankSession::open`].
#[cfg_attr(fuzzing, derive(Clone))]
pub struct BankSession {
    layer: RecordLayer,
    terminal: TerminalId,
    binding: ChannelBinding,
    /// The padding unit of the answer to the request opened last.
    reply_pad: Option<usize>,
}

impl BankSession {
    pub(crate) fn new(keys: Keys, config: &Config, terminal: TerminalId) -> Self {
        Self {
            binding: ChannelBinding::new(keys.channel_binding),
            layer: RecordLayer::new(keys, false, config),
            terminal,
            reply_pad: None,
        }
    }

    /// This session's channel binding (§17): what a signed card's signature must cover.
    pub fn channel_binding(&self) -> &ChannelBinding {
        &self.binding
    }

    /// The terminal this session authenticated as.
    pub fn terminal_id(&self) -> &TerminalId {
        &self.terminal
    }

    /// Opens the ATM's next record. After any error the session is closed for good.
    pub fn open(&mut self, wire: &[u8], now_ms: u64) -> Result<Request, Error> {
        let plaintext = self.layer.open(wire)?;
        let Some(plain) = parse_strict::<ClientPlainIn>(&plaintext) else {
            return Err(self.layer.plaintext_failed());
        };
        self.layer.check_fresh(plain.ts, now_ms)?;
        self.reply_pad = plain
            .request
            .carries_credential()
            .then_some(CREDENTIAL_REPLY_LEN);
        Ok(plain.request)
    }

    /// Seals a response stamped with `now_ms`, the answer to the request opened last; returns
    /// the record's JSON text. When that request carried a credential, the answer (`welcome`,
    /// `error` or any other) is padded to [`CREDENTIAL_REPLY_LEN`] (PROTOCOL.md §8.6), so a
    /// right and a wrong password get answers of one length.
    pub fn seal(
        &mut self,
        response: &Response,
        rng: &mut impl Rng,
        now_ms: u64,
    ) -> Result<String, Error> {
        let plaintext = to_plaintext(
            &BankPlainOut {
                ts: now_ms,
                response,
            },
            self.reply_pad,
        );
        self.layer.seal(plaintext, rng)
    }

    /// `false` once any record failed to open; the transport should then close.
    pub fn is_open(&self) -> bool {
        !self.layer.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from_bytes([byte; 32])
    }

    fn layer(send_seq: u64, recv_seq: u64) -> RecordLayer {
        RecordLayer {
            send: Half {
                enc: key(1),
                mac: key(2),
                direction: DIR_C2S,
                seq: send_seq,
            },
            recv: Half {
                enc: key(1),
                mac: key(2),
                direction: DIR_C2S,
                seq: recv_seq,
            },
            max_skew_ms: 0,
            failed: false,
        }
    }

    fn plain() -> Zeroizing<Vec<u8>> {
        Zeroizing::new(b"{}".to_vec())
    }

    struct Counter(u8);
    impl rand_core::RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            self.0 = self.0.wrapping_add(1);
            dest.fill(self.0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for Counter {}

    #[test]
    fn padding_reaches_the_unit_then_its_multiples_up_to_the_plaintext_cap() {
        assert_eq!(padded_len(1, 2_200), 2_200);
        assert_eq!(padded_len(2_200, 2_200), 2_200);
        assert_eq!(padded_len(2_201, 2_200), 4_400);
        assert_eq!(padded_len(6_601, 2_200), MAX_PLAINTEXT_LEN);
        assert_eq!(padded_len(MAX_PLAINTEXT_LEN + 1, 2_200), MAX_PLAINTEXT_LEN);
        assert_eq!(padded_len(1_000, 1_000), 1_000);
        let text = to_plaintext(&"é", Some(16));
        assert_eq!(&text[..], "\"é\"            ".as_bytes());
        assert_eq!(&to_plaintext(&"é", None)[..], "\"é\"".as_bytes());
    }

    #[test]
    fn a_direction_carries_at_most_its_cap_of_records() {
        // The spec's figure: sequence numbers 0 to 2^32 - 1.
        assert_eq!(MAX_RECORDS_PER_DIRECTION, 4_294_967_296);
        let last = MAX_RECORDS_PER_DIRECTION - 1;
        // The last allowed record goes out and is read; the next is never sealed.
        let mut sender = layer(last, 0);
        let mut receiver = layer(0, last);
        let wire = sender.seal(plain(), &mut Counter(0)).unwrap();
        assert!(receiver.open(wire.as_bytes()).is_ok());
        assert_eq!(sender.seal(plain(), &mut Counter(0)), Err(Error::Closed));
        // A record numbered at the cap is refused even by a receiver expecting it.
        let ok = layer(last, 0).seal(plain(), &mut Counter(0)).unwrap();
        let at_cap = ok.replacen(
            &format!("\"seq\":{}", MAX_RECORDS_PER_DIRECTION - 1),
            &format!("\"seq\":{MAX_RECORDS_PER_DIRECTION}"),
            1,
        );
        let mut expecting = layer(0, MAX_RECORDS_PER_DIRECTION);
        assert_eq!(
            expecting.open(at_cap.as_bytes()).err(),
            Some(Error::BadRecord(RecordFault::Sequence))
        );
    }
}

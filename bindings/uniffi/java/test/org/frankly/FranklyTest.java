// frankly from Java, through the UniFFI bindings (Java by uniffi-bindgen-java
// 0.3.1 on JNA). Run by bindings/uniffi/tests/junit.rs, which prepares the
// directory named by the system property frankly.test.dir (signed bundles,
// keys, a banked photo, the models) and afterwards opens and verifies the
// report this suite writes there:
//   policy-v1.bundle, policy-v2.bundle, bank.bundle, platform.pub, tag.key,
//   report.pub, banked.jpg, photo.jpg, pdq.txt (Rust's PDQ of photo.jpg),
//   adult.toml, models/; written: report.bin.
package org.frankly;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

class FranklyTest {
    static final Path DIR = Path.of(System.getProperty("frankly.test.dir"));
    static final long NOW_MS = Long.parseLong(System.getProperty("frankly.now.ms"));
    static final String CONVERSATION = "alice-bob";
    static final int TAG_KEY_ID = 7;

    static byte[] read(String name) throws IOException {
        return Files.readAllBytes(DIR.resolve(name));
    }

    // ---- The platform: numbers messages, tags each copy, MACs it for the
    // receiving device (HMAC-SHA256 over the layouts in docs/franking.md).

    static byte[] hmac(byte[] key, byte[] data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(data);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static void lp(DataOutputStream out, String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeInt(b.length);
        out.write(b);
    }

    record Member(Party party, byte[] key) {}

    static Delivered deliver(long seq, byte[] c, Member from, Member to) throws IOException {
        long timestamp = NOW_MS - 60_000 + seq;
        String serverId = "srv-" + seq;
        ByteArrayOutputStream delivery = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(delivery);
        lp(d, CONVERSATION);
        d.writeLong(seq);
        lp(d, from.party().userId());
        lp(d, from.party().deviceId());
        lp(d, to.party().userId());
        lp(d, to.party().deviceId());
        d.writeLong(timestamp);
        lp(d, serverId);

        ByteArrayOutputStream tagInput = new ByteArrayOutputStream();
        DataOutputStream t = new DataOutputStream(tagInput);
        t.write("frankly franking platform tag v2\0".getBytes(StandardCharsets.US_ASCII));
        t.writeInt(TAG_KEY_ID);
        t.write(c);
        t.write(delivery.toByteArray());
        byte[] tag = hmac(read("tag.key"), tagInput.toByteArray());

        ByteArrayOutputStream macInput = new ByteArrayOutputStream();
        DataOutputStream m = new DataOutputStream(macInput);
        m.write("frankly delivery mac v2\0".getBytes(StandardCharsets.US_ASCII));
        m.writeInt(TAG_KEY_ID);
        m.write(tag);
        m.write(c);
        m.write(delivery.toByteArray());
        byte[] mac = hmac(to.key(), macInput.toByteArray());
        return new Delivered(c, CONVERSATION, seq, from.party(), to.party(), timestamp, serverId, TAG_KEY_ID, tag, mac);
    }

    // ---- The devices.

    static final Facts CONTACT = new Facts(true, null);

    record Phone(Member member, Device device, Scanner scanner) {}

    static Phone phone(String user, String device, byte fill) throws Exception {
        byte[] key = new byte[32];
        Arrays.fill(key, fill);
        Party me = new Party(user, device);
        Device d = new Device(me, 10, key);
        Scanner s = scanner(d);
        return new Phone(new Member(me, key), d, s);
    }

    static Scanner scanner(Device d) throws Exception {
        return d.scannerFromBundles(
                read("policy-v2.bundle"), List.of(read("bank.bundle")), read("platform.pub"),
                NOW_MS / 1000, "adult", DIR.resolve("models").toString(), Map.of("sensitive_content_warnings", true));
    }

    /** Franks on `from`; if seq > 0 the platform answers with the sender's own copy. */
    static Outgoing frank(Phone from, String id, String text, List<Attachment> attachments, long seq) throws Exception {
        Outgoing out = from.device().prepareOutgoing(from.scanner(), CONVERSATION, id, text, attachments, new Facts(null, null));
        if (!out.blocked() && seq > 0) {
            from.device().confirmSent(out, deliver(seq, out.commitment(), from.member(), from.member()));
        }
        return out;
    }

    static IncomingMessage receive(Phone to, Member from, long seq, Outgoing committed, Outgoing carried) throws Exception {
        Delivered copy = deliver(seq, committed.commitment(), from, to.member());
        to.device().checkDelivered(copy);
        return to.device().acceptIncoming(to.scanner(), copy, carried.plaintext(), carried.attachmentCiphertexts(), from.party(), CONTACT);
    }

    @Test
    void pdqIsTheRustLibrarys() throws Exception {
        PdqHash h = FranklyUniffi.pdq(read("photo.jpg"));
        String[] expected = new String(read("pdq.txt"), StandardCharsets.US_ASCII).trim().split(" ");
        assertEquals(expected[0], h.hash());
        assertEquals(Integer.parseInt(expected[1]), Byte.toUnsignedInt(h.quality()));
    }

    @Test
    void aScanBlocksTheBankedPhotoWhateverItsLabel() throws Exception {
        byte[] banked = read("banked.jpg");
        String hash = FranklyUniffi.pdq(banked).hash();
        try (Bank bank = new Bank("known", "pdq", List.of(hash));
                Scanner scanner = Scanner.local(new String(read("adult.toml"), StandardCharsets.UTF_8), "adult",
                        List.of(bank), DIR.resolve("models").toString(), Map.of())) {
            assertEquals(1, bank.len());
            String verdict = scanner.scan(true, "", List.of(new Attachment(banked, "application/pdf")));
            assertTrue(verdict.contains("block_send"), verdict);
            String harmless = scanner.scan(true, "hello", List.of());
            assertTrue(harmless.contains("\"allow\""), harmless);
        }
    }

    @Test
    void badInputThrowsWithTheLibrarysMessage() throws Exception {
        FranklyException e = assertThrows(FranklyException.class, () -> FranklyUniffi.pdq("not an image".getBytes()));
        assertFalse(e.getMessage().isEmpty());
        FranklyException.InvalidArgument shortKey = assertThrows(FranklyException.InvalidArgument.class,
                () -> new Device(new Party("alice", "phone"), 10, new byte[5]));
        assertTrue(shortKey.getMessage().contains("device_key must be 32 bytes, not 5"), shortKey.getMessage());
        assertThrows(FranklyException.Refused.class, () -> new Device(new Party("alice", "phone"), 0, new byte[32]));
        assertThrows(FranklyException.InvalidArgument.class, () -> new Bank("b", "sha1024", List.of()));
        assertThrows(FranklyException.Refused.class, () -> new Bank("b", "pdq", List.of("zz")));
        FranklyException setting = assertThrows(FranklyException.Refused.class, () -> Scanner.local(
                new String(read("adult.toml"), StandardCharsets.UTF_8), "adult", List.of(), DIR.resolve("models").toString(),
                Map.of("no_such_setting", true)));
        assertTrue(setting.getMessage().contains("no setting \"no_such_setting\""), setting.getMessage());
    }

    @Test
    void sendReceiveRefuseForgeriesSaveReopenAndReport() throws Exception {
        Phone alice = phone("alice", "phone", (byte) 0xa1);
        Phone bob = phone("bob", "laptop", (byte) 0xb0);

        // A policy older than the one loaded is refused; the state is unchanged.
        FranklyException rollback = assertThrows(FranklyException.class, () -> bob.device().scannerFromBundles(
                read("policy-v1.bundle"), List.of(), read("platform.pub"), NOW_MS / 1000, "adult", null, Map.of()));
        assertTrue(rollback.getMessage().contains("rollback"), rollback.getMessage());

        // 1, 2, 3: both sides, one message with an attachment.
        Outgoing m1 = frank(alice, "a-1", "hi bob", List.of(), 1);
        assertTrue(m1.verdictJson().contains("\"allow\""), m1.verdictJson());
        assertEquals("hi bob", receive(bob, alice.member(), 1, m1, m1).text());
        Outgoing m2 = frank(bob, "b-1", "leave me alone", List.of(), 2);
        assertEquals("leave me alone", receive(alice, bob.member(), 2, m2, m2).text());
        byte[] note = "meet me at six".getBytes(StandardCharsets.UTF_8);
        Outgoing m3 = frank(alice, "a-2", "you will regret it", List.of(new Attachment(note, "text/plain")), 3);
        assertEquals(1, m3.attachmentCiphertexts().size());
        IncomingMessage got = receive(bob, alice.member(), 3, m3, m3);
        assertEquals("you will regret it", got.text());
        assertEquals("a-2", got.messageId());
        assertArrayEquals(note, got.attachments().get(0).bytes());
        assertEquals("text/plain", got.attachments().get(0).mediaType());

        // A banked photo is blocked before franking.
        Outgoing blocked = frank(alice, "a-3", "", List.of(new Attachment(read("banked.jpg"), "application/pdf")), 0);
        assertTrue(blocked.blocked());
        assertNull(blocked.plaintext());
        assertNull(blocked.commitment());
        assertTrue(blocked.verdictJson().contains("block_send"));

        // 4: a client that commits to one message and encrypts another.
        Outgoing committed = frank(alice, "a-4", "what was committed", List.of(), 0);
        Outgoing carried = frank(alice, "a-5", "what was encrypted", List.of(), 0);
        FranklyException forged = assertThrows(FranklyException.Refused.class,
                () -> receive(bob, alice.member(), 4, committed, carried));
        assertTrue(forged.getMessage().contains("commitment does not match"), forged.getMessage());

        // 5: altered on the way (refused, nothing changes), then undecryptable (kept unopened).
        Outgoing m5 = frank(alice, "a-6", "see you", List.of(), 0);
        Delivered intact = deliver(5, m5.commitment(), alice.member(), bob.member());
        Delivered altered = new Delivered(intact.commitment(), intact.conversationId(), intact.sequence(), intact.sender(),
                intact.recipient(), intact.timestampMs() + 1, intact.serverMessageId(), intact.tagKeyId(), intact.tag(),
                intact.deliveryMac());
        FranklyException mac = assertThrows(FranklyException.class, () -> bob.device().checkDelivered(altered));
        assertTrue(mac.getMessage().contains("delivery MAC"), mac.getMessage());
        assertThrows(FranklyException.class,
                () -> bob.device().checkDelivered(deliver(3, m3.commitment(), alice.member(), bob.member())));
        bob.device().refuse(intact, true);

        // Bob's phone restarts.
        byte[] pickleKey = new byte[32];
        Arrays.fill(pickleKey, (byte) 0x5a);
        byte[] pickle = bob.device().save(pickleKey);
        bob.scanner().close();
        bob.device().close();
        byte[] wrong = pickleKey.clone();
        wrong[0] ^= 1;
        FranklyException wrongKey = assertThrows(FranklyException.class,
                () -> Device.load(pickle, wrong, bob.member().key()));
        assertTrue(wrongKey.getMessage().contains("wrong key"), wrongKey.getMessage());
        try (Device reopened = Device.load(pickle, pickleKey, bob.member().key())) {
            FranklyException refusedReport = assertThrows(FranklyException.class, () -> reopened.report(
                    CONVERSATION, committed.commitment(), 0, 0, "harassment", "", false, 1, read("report.pub")));
            assertTrue(refusedReport.getMessage().contains("refused on this device"), refusedReport.getMessage());
            assertThrows(FranklyException.InvalidArgument.class, () -> reopened.report(
                    CONVERSATION, m3.commitment(), 2, 1, "threats", "", false, 1, read("report.pub")));
            byte[] envelope = reopened.report(CONVERSATION, m3.commitment(), 2, 1, "harassment", "threats", true, 1,
                    read("report.pub"));
            Files.write(DIR.resolve("report.bin"), envelope);
        }
        for (Outgoing o : List.of(m1, m2, m3, blocked, committed, carried, m5)) {
            o.close();
        }
        alice.scanner().close();
        alice.device().close();
    }
}

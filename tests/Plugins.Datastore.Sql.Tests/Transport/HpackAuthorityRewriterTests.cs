using System.Text;
using Coracle.Plugins.Datastore.Sql.Transport;

namespace Coracle.Plugins.Datastore.Sql.Tests.Transport;

public sealed class HpackAuthorityRewriterTests
{
    private static byte[] Str(string value) => [(byte)value.Length, .. Encoding.Latin1.GetBytes(value)];

    private static byte[] Literal(byte prefix, string value) => [prefix, .. Str(value)];

    [Fact]
    public void TryHuffmanDecode_Rfc7541ExampleC41_DecodesHost()
    {
        byte[] encoded = [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff];
        Assert.True(HpackAuthorityRewriter.TryHuffmanDecode(encoded, out var value));
        Assert.Equal("www.example.com", value);
    }

    [Fact]
    public void TryRewrite_SocketPathAuthorityIndexed_ReplacedAndLaterIndexPassesThrough()
    {
        var rewriter = new HpackAuthorityRewriter();
        Assert.True(rewriter.TryRewrite(Literal(0x41, "/run/coracle/etcd.sock"), out var rewritten));
        Assert.Equal(Literal(0x41, "localhost"), rewritten);

        // Index 62 is the newest dynamic entry: on the server's side it now holds ":authority: localhost".
        Assert.True(rewriter.TryRewrite([0xbe], out var second));
        Assert.Null(second);
        Assert.Equal(1, rewriter.Rewrites);
    }

    [Fact]
    public void TryRewrite_HostAuthority_Unchanged()
    {
        var rewriter = new HpackAuthorityRewriter();
        Assert.True(rewriter.TryRewrite([.. Literal(0x41, "127.0.0.1:2379"), .. Literal(0x04, "/etcdserverpb.KV/Range")], out var rewritten));
        Assert.Null(rewritten);
    }

    [Fact]
    public void TryRewrite_UrlWithoutIndexingAfterOtherFields_OnlyAuthorityReplaced()
    {
        var rewriter = new HpackAuthorityRewriter();
        byte[] block = [0x83, .. Literal(0x01, "unix:///run/etcd.sock"), .. Literal(0x04, "/etcdserverpb.Maintenance/Status")];
        Assert.True(rewriter.TryRewrite(block, out var rewritten));
        Assert.Equal([0x83, .. Literal(0x01, "localhost"), .. Literal(0x04, "/etcdserverpb.Maintenance/Status")], rewritten);
    }

    [Fact]
    public void TryRewrite_ShortPathIndexedThenNameReferenceToDynamicEntry_BothReplaced()
    {
        var rewriter = new HpackAuthorityRewriter();

        // A literal name ":authority" added to the table with a value shorter than "localhost": replaced by "".
        byte[] first = [0x40, .. Str(":authority"), .. Str("a/b")];
        Assert.True(rewriter.TryRewrite(first, out var rewritten));
        Assert.Equal([0x40, .. Str(":authority"), 0x00], rewritten);

        // Name by reference to dynamic index 62, without indexing.
        Assert.True(rewriter.TryRewrite([0x0f, 0x2f, .. Str("/x/etcd.sock")], out var second));
        Assert.Equal([0x0f, 0x2f, .. Str("localhost")], second);
    }

    [Fact]
    public void TryRewrite_IndexBeyondTable_Fails()
    {
        Assert.False(new HpackAuthorityRewriter().TryRewrite([0xbe], out _));
    }

    [Theory]
    [InlineData("localhost", true)]
    [InlineData("127.0.0.1:2379", true)]
    [InlineData("[::1]:2379", true)]
    [InlineData("etcd-0.etcd.svc", true)]
    [InlineData("/run/etcd.sock", false)]
    [InlineData("http://127.0.0.1:2379", false)]
    [InlineData("unix:etcd.sock", false)]
    public void IsHost_Value_MatchesKestrelRules(string value, bool expected)
    {
        Assert.Equal(expected, HpackAuthorityRewriter.IsHost(value));
    }
}

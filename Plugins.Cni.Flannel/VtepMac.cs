using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Coracle.Plugins.Cni.Flannel;

/// <summary>
/// The VXLAN device's MAC. Derived from the node name so it survives restarts (the device is deleted on stop,
/// and peers keep the old MAC until they see the new annotation): locally administered, unicast.
/// </summary>
public static partial class VtepMac
{
    /// <summary>The MAC for <paramref name="nodeName"/>: <c>x2:..</c> with five bytes of SHA-256(name).</summary>
    public static string Derive(string nodeName)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("coracle-flannel/" + nodeName));
        hash[0] = (byte)((hash[0] & 0xFC) | 0x02);
        return string.Join(":", hash.Take(6).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>True for <c>aa:bb:cc:dd:ee:ff</c>.</summary>
    public static bool IsValid(string text) => MacPattern().IsMatch(text);

    [GeneratedRegex("^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")]
    private static partial Regex MacPattern();
}

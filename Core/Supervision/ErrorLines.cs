using System.Text;

namespace Coracle.Core.Supervision;

/// <summary>
/// Recognises the lines of a child's output that report an error, in the formats the node's components write:
/// klog (<c>E1206 15:04:05.123456 ...</c>, <c>F...</c>), logrus (containerd, flannel: <c>level=error</c>,
/// <c>level=fatal</c>, <c>level=panic</c>), zap JSON (<c>"level":"error"</c>) and Go's runtime
/// (<c>panic: ...</c>, <c>fatal error: ...</c>). Works on the raw bytes, so ordinary lines are never decoded.
/// </summary>
internal static class ErrorLines
{
    private static readonly byte[][] LevelWords = ["level=error"u8.ToArray(), "level=fatal"u8.ToArray(), "level=panic"u8.ToArray()];
    private static readonly byte[][] JsonLevels = ["\"level\":\"error\""u8.ToArray(), "\"level\":\"fatal\""u8.ToArray(), "\"level\":\"panic\""u8.ToArray()];

    public static bool IsError(string line) => IsError(Encoding.UTF8.GetBytes(line));

    public static bool IsError(ReadOnlySpan<byte> line)
    {
        // klog: severity letter, MMDD, a space.
        if (line.Length >= 6 && (line[0] == (byte)'E' || line[0] == (byte)'F')
            && IsDigit(line[1]) && IsDigit(line[2]) && IsDigit(line[3]) && IsDigit(line[4]) && line[5] == (byte)' ')
        {
            return true;
        }

        if (line.StartsWith("panic:"u8) || line.StartsWith("fatal error:"u8))
        {
            return true;
        }

        foreach (var word in LevelWords)
        {
            if (HasWord(line, word))
            {
                return true;
            }
        }

        foreach (var json in JsonLevels)
        {
            if (line.IndexOf(json) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';

    /// <summary>True when <paramref name="word"/> occurs as a whole space-separated field (logrus's key=value).</summary>
    private static bool HasWord(ReadOnlySpan<byte> line, ReadOnlySpan<byte> word)
    {
        var offset = 0;
        while (offset < line.Length)
        {
            var at = line[offset..].IndexOf(word);
            if (at < 0)
            {
                return false;
            }

            var start = offset + at;
            var end = start + word.Length;
            var before = start == 0 || line[start - 1] is (byte)' ' or (byte)'\t';
            var after = end == line.Length || line[end] is (byte)' ' or (byte)'\t' or (byte)'\r';
            if (before && after)
            {
                return true;
            }

            offset = start + 1;
        }

        return false;
    }
}

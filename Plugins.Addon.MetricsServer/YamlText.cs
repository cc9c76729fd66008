using System.Globalization;
using System.Text;

namespace Coracle.Plugins.Addon.MetricsServer;

/// <summary>The one piece of YAML the manifest's text needs beyond plain words: a quoted scalar.</summary>
internal static class YamlText
{
    /// <summary><paramref name="value"/> as a double-quoted YAML scalar (any text is safe in it).</summary>
    public static string Quote(string value)
    {
        var text = new StringBuilder("\"");
        foreach (var c in value)
        {
            text.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\t' => "\\t",
                _ when char.IsControl(c) => string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => c.ToString(),
            });
        }

        return text.Append('"').ToString();
    }
}

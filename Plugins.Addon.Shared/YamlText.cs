using System.Globalization;
using System.Text;

namespace Coracle.Plugins.Addon;

/// <summary>The two pieces of YAML the add-ons' manifests need: a quoted scalar and an indented block. Compiled into each add-on plugin (a plugin references nothing but the SDK).</summary>
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

    /// <summary>Every line of <paramref name="text"/> indented by <paramref name="spaces"/>, for a literal block scalar.</summary>
    public static string Indent(string text, int spaces)
    {
        var pad = new string(' ', spaces);
        return string.Join('\n', text.TrimEnd('\n').Split('\n').Select(line => line.Length == 0 ? line : pad + line));
    }
}

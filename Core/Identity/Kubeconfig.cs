using System.Text;
using Coracle.Core.Hosting;

namespace Coracle.Core.Identity;

/// <summary>Writes kubeconfig files: embedded data for the portable admin file, file references for components.</summary>
internal static class Kubeconfig
{
    public static string Render(string server, string caFile, string certFile, string keyFile, string user, bool embed)
    {
        var text = new StringBuilder();
        text.Append("apiVersion: v1\nkind: Config\nclusters:\n- name: coracle\n  cluster:\n");
        text.Append("    server: ").Append(Quote(server)).Append('\n');
        AppendFile(text, "    certificate-authority", caFile, embed);
        text.Append("contexts:\n- name: coracle\n  context:\n    cluster: coracle\n    user: ").Append(Quote(user)).Append('\n');
        text.Append("current-context: coracle\npreferences: {}\nusers:\n- name: ").Append(Quote(user)).Append("\n  user:\n");
        AppendFile(text, "    client-certificate", certFile, embed);
        AppendFile(text, "    client-key", keyFile, embed);
        return text.ToString();
    }

    public static void Write(string path, string server, string caFile, string certFile, string keyFile, string user, bool embed, UnixFileMode mode) =>
        FileUtil.WriteAtomic(path, Render(server, caFile, certFile, keyFile, user, embed), mode);

    private static void AppendFile(StringBuilder text, string key, string file, bool embed)
    {
        if (embed)
        {
            text.Append(key).Append("-data: ").Append(Convert.ToBase64String(File.ReadAllBytes(file))).Append('\n');
        }
        else
        {
            text.Append(key).Append(": ").Append(Quote(file)).Append('\n');
        }
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}

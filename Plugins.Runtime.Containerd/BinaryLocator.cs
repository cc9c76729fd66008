namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>Finds a component binary: an explicit path, else the image's components folder, else PATH.</summary>
public static class BinaryLocator
{
    /// <summary>The binary's path, or null; <paramref name="searched"/> lists where it looked, for the report.</summary>
    public static string? Find(string name, string? explicitPath, string? componentsDir, string? pathVariable, out string searched)
    {
        var places = new List<string>();
        if (explicitPath is not null)
        {
            searched = explicitPath;
            return IsExecutable(explicitPath) ? explicitPath : null;
        }

        if (!string.IsNullOrEmpty(componentsDir))
        {
            places.Add(componentsDir);
        }

        places.AddRange((pathVariable ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries));
        searched = places.Count == 0 ? "(nowhere: no components dir, empty PATH)" : string.Join(", ", places.Distinct());
        foreach (var dir in places)
        {
            var candidate = Path.Combine(dir, name);
            if (IsExecutable(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>A regular file with an execute bit.</summary>
    public static bool IsExecutable(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                return false;
            }

            var mode = File.GetUnixFileMode(path);
            return (mode & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}

using Microsoft.Extensions.Logging;

namespace Coracle.Core.Logging;

/// <summary>Secrets encryption at rest (Core/Secrets) and <c>coracle killall</c>'s process selection: event ids 1040-1059.</summary>
internal static partial class Log
{
    [LoggerMessage(1040, LogLevel.Information, "secrets encryption on: generated {Provider} key {Key} in {File}")]
    public static partial void EncryptionKeyGenerated(this ILogger logger, string provider, string key, string file);

    [LoggerMessage(1041, LogLevel.Information, "secrets encryption on: active key {Key} ({Provider}), {Others} older keys kept to decrypt, in {File}")]
    public static partial void EncryptionActive(this ILogger logger, string key, string provider, int others, string file);

    [LoggerMessage(1042, LogLevel.Information, "secrets encryption: the active key is {Active}, secrets-encryption-provider is {Wanted}; 'coracle secrets-encrypt rotate-keys' switches to it")]
    public static partial void EncryptionProviderDiffers(this ILogger logger, string active, string wanted);

    [LoggerMessage(1043, LogLevel.Warning, "secrets encryption turned on again with key {Key}; Secrets written while it was off stay in the clear until 'coracle secrets-encrypt rotate-keys'")]
    public static partial void EncryptionReenabled(this ILogger logger, string key);

    [LoggerMessage(1044, LogLevel.Warning, "secrets encryption is off but {File} holds {Count} keys: kube-apiserver keeps them to read Secrets encrypted earlier and stores new writes in the clear; turn --secrets-encryption on again to encrypt them")]
    public static partial void EncryptionOffKeysKept(this ILogger logger, string file, int count);

    [LoggerMessage(1045, LogLevel.Information, "secrets encryption: added key {Key} ({Provider}) first in {File}; older keys still decrypt")]
    public static partial void RotationKeyAdded(this ILogger logger, string key, string provider, string file);

    [LoggerMessage(1046, LogLevel.Information, "waiting for kube-apiserver to load {File} ({Elapsed} s; it re-reads the file about once a minute)")]
    public static partial void RotationWaitingForReload(this ILogger logger, string file, long elapsed);

    [LoggerMessage(1047, LogLevel.Information, "kube-apiserver loaded {File}")]
    public static partial void RotationReloaded(this ILogger logger, string file);

    [LoggerMessage(1048, LogLevel.Information, "rewrote {Count} secrets with key {Key}")]
    public static partial void RotationRewritten(this ILogger logger, int count, string key);

    [LoggerMessage(1049, LogLevel.Information, "removed keys {Keys}: every secret is now under {Key}")]
    public static partial void RotationOldKeysRemoved(this ILogger logger, string keys, string key);
}

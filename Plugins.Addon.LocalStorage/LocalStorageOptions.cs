namespace Coracle.Plugins.Addon.LocalStorage;

/// <summary>What the manifest is rendered from.</summary>
/// <param name="Image">The provisioner's image.</param>
/// <param name="HelperImage">The helper pods' image.</param>
/// <param name="StoragePath">The folder on every node that holds the volumes.</param>
internal sealed record LocalStorageOptions(string Image, string HelperImage, string StoragePath);

namespace Attribution;
internal static class Placeholder { }

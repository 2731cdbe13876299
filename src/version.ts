/** This build's version (package.json's; a test keeps them equal): the CLI's --version, and the traces' service.version. */
export const version = "0.1.0"

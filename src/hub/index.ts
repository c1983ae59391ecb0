/** Hugging Face hub downloads into the huggingface_hub cache layout. */
export { hubCacheDir, RepoCache, checkRepoId, isCommitHash } from './cache';
export { HubClient, HubError, DEFAULT_ENDPOINT, sha256File } from './client';
export type { HubClientOptions, HubErrorKind, DownloadProgress, FileMetadata, RepoFiles, Snapshot } from './client';

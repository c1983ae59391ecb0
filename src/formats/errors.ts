/**
 * Every problem found in a model file is reported as a ModelFileError that names the file,
 * the tensor (when one is involved) and the problem, so a user can tell a corrupt download
 * from an unsupported variant without a debugger.
 */
export class ModelFileError extends Error {
  /**
   * @param file path of the offending file (or folder for multi-file models)
   * @param tensor tensor name, or null when the problem is not tied to one tensor
   * @param problem human-readable description of what is wrong
   */
  constructor(
    readonly file: string,
    readonly tensor: string | null,
    readonly problem: string,
  ) {
    super(tensor === null ? `${file}: ${problem}` : `${file}: tensor '${tensor}': ${problem}`);
    this.name = 'ModelFileError';
  }
}

/** Where a tensor's bytes came from; codecs use it to word their errors. */
export interface TensorLocation {
  /** File (or folder) the tensor was read from. */
  file: string;
  /** Tensor name as stored in that file. */
  tensor: string;
}

/** Throws a ModelFileError for `where` with the given problem. */
export function fail(where: TensorLocation, problem: string): never {
  throw new ModelFileError(where.file, where.tensor, problem);
}

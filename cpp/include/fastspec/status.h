// Errors thrown by the core. Python sees FormatError/ModelError (ValueError subclasses)
// and FileNotFoundError/OSError for IoError. Every message names the file and what is wrong.
#pragma once
#include <stdexcept>
#include <string>

namespace fastspec {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file's bytes do not form a valid/supported GGUF or safetensors model file.
class FormatError : public Error {
 public:
  using Error::Error;
};

// The file is well-formed but describes a model we cannot run (architecture, missing tensor...).
class ModelError : public Error {
 public:
  using Error::Error;
};

// The file cannot be opened/mapped (missing, permissions, not a regular file).
class IoError : public Error {
 public:
  using Error::Error;
};

// A caller passed an invalid argument (a sampling parameter out of range, a prompt longer than the
// context, ...). Python sees ValueError.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

}  // namespace fastspec

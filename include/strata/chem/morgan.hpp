#pragma once
/// \file morgan.hpp
/// SMILES to Morgan fingerprints through RDKit's C++ library (ECFP-like circular fingerprints:
/// radius 2 and 2,048 bits by default, as bits or as counts of atom environments per bit).
///
/// RDKit is optional. Programs that read SMILES link `Strata::rdkit` (which defines
/// STRATA_WITH_RDKIT); without it this header still compiles, `rdkit_available` is false and a
/// `MorganFeaturizer` refuses to be made with a message saying how to get SMILES support.

#include <cstdint>
#include <memory>
#include <string>

#include "../core/config.hpp"
#include "../core/error.hpp"

#ifdef STRATA_WITH_RDKIT
#include <DataStructs/ExplicitBitVect.h>
#include <DataStructs/SparseIntVect.h>
#include <GraphMol/Fingerprints/MorganFingerprints.h>
#include <GraphMol/GraphMol.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <RDGeneral/RDLog.h>
#endif

namespace strata {

/// Whether this build reads SMILES (RDKit linked through Strata::rdkit).
#ifdef STRATA_WITH_RDKIT
inline constexpr bool rdkit_available = true;
#else
inline constexpr bool rdkit_available = false;
#endif

/// Shape of a Morgan fingerprint.
struct morgan_options {
  unsigned radius = 2;
  Index bits = 2048;
  bool counts = false;  ///< count atom environments per bit instead of setting it to 1
};

/// Turns SMILES into Morgan fingerprints. Thread-safe: each call parses its own molecule.
class MorganFeaturizer {
 public:
  explicit MorganFeaturizer(morgan_options options = {}) : o_(options) {
    if (!rdkit_available)
      throw config_error("SMILES input needs RDKit, and this build has none: install librdkit-dev, reconfigure, and "
                         "link Strata::rdkit (or give precomputed fingerprints or descriptors as CSV)");
    if (o_.bits < 1 || o_.bits > (Index{1} << 24)) throw config_error(detail::concat("Morgan fingerprint: bad width ", o_.bits));
#ifdef STRATA_WITH_RDKIT
    // Invalid SMILES are counted and reported with their line by the caller; RDKit's own
    // per-molecule messages would only repeat them on stderr.
    boost::logging::disable_logs("rdApp.error");
    boost::logging::disable_logs("rdApp.warning");
#endif
  }

  Index width() const { return o_.bits; }
  const morgan_options& options() const { return o_; }

  /// Writes the fingerprint of `smiles` into `out` (`width()` values, every one written) and
  /// returns true; returns false, leaving zeros, when RDKit cannot parse or sanitise it.
  template <class T>
  bool featurize(const std::string& smiles, T* out) const {
    for (Index i = 0; i < o_.bits; ++i) out[i] = T(0);
#ifdef STRATA_WITH_RDKIT
    std::unique_ptr<RDKit::RWMol> mol;
    try {
      mol.reset(RDKit::SmilesToMol(smiles));
    } catch (const std::exception&) {
      return false;  // RDKit throws for some malformed input rather than returning null
    }
    if (!mol || mol->getNumAtoms() == 0) return false;  // "" parses to a molecule without atoms
    const auto bits = static_cast<unsigned>(o_.bits);
    if (o_.counts) {
      const std::unique_ptr<RDKit::SparseIntVect<std::uint32_t>> fp(RDKit::MorganFingerprints::getHashedFingerprint(*mol, o_.radius, bits));
      for (const auto& [bit, count] : fp->getNonzeroElements()) out[bit] = static_cast<T>(count);
    } else {
      const std::unique_ptr<ExplicitBitVect> fp(RDKit::MorganFingerprints::getFingerprintAsBitVect(*mol, o_.radius, bits));
      for (unsigned i = 0; i < bits; ++i)
        if (fp->getBit(i)) out[i] = T(1);
    }
    return true;
#else
    (void)smiles;
    return false;
#endif
  }

 private:
  morgan_options o_;
};

}  // namespace strata
